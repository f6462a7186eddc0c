import { z } from 'zod';

export const tlsTracerSchema = z.object({
  enabled: z.boolean().default(true).describe('TLS plaintext from OpenSSL and GnuTLS uprobes (libssl.so.3, libgnutls.so.30 and binaries exporting SSL_write or gnutls_record_send, e.g. node); needs the socket tracer. Env: TELEGEN_TLS=0 disables'),
  rescan_ms: z.number().int().min(200).max(600_000).default(2000)
    .describe('How often /proc is scanned for binaries that newly map OpenSSL or GnuTLS (a binary once hooked covers every process that runs it); with the Go tracer\'s exec events, how often the safety-net check runs'),
  safety_rescan_ms: z.number().int().min(200).max(3_600_000).default(30_000)
    .describe('With exec events (Go tracer on), new processes are looked at when they exec and full /proc scans only run this often (and at once when the exec ring dropped events)'),
  capture_max: z.number().int().min(1).max(16384).default(16384).describe('Plaintext bytes kept per SSL_read/SSL_write (gnutls_record_recv/send: one record, at most 16384, per call)'),
  capture_tail: z.number().int().min(0).max(16384).default(16384)
    .describe('Of a call longer than capture_max, plaintext bytes also kept from its end, the bytes between reported lost: one write often ends with what closes an exchange (an HTTP/2 END_STREAM frame, gRPC trailers). 0 keeps the head only'),
}).strict();
export type TlsTracerConfig = z.infer<typeof tlsTracerSchema>;
