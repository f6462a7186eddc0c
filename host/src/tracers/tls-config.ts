import { z } from 'zod';

export const tlsTracerSchema = z.object({
  enabled: z.boolean().default(true).describe('TLS plaintext from OpenSSL uprobes (libssl.so.3 and binaries exporting SSL_write, e.g. node); needs the socket tracer. Env: TELEGEN_TLS=0 disables'),
  rescan_ms: z.number().int().min(200).max(600_000).default(2000)
    .describe('How often /proc is scanned for binaries that newly map OpenSSL (a binary once hooked covers every process that runs it)'),
  capture_max: z.number().int().min(1).max(16384).default(16384).describe('Plaintext bytes kept per SSL_read/SSL_write'),
}).strict();
export type TlsTracerConfig = z.infer<typeof tlsTracerSchema>;
