import { z } from 'zod';

export const goTracerSchema = z.object({
  enabled: z.boolean().default(true).describe('Go TLS plaintext from uprobes on crypto/tls.(*Conn).Write/Read in Go binaries (stripped too; Go >= 1.17, amd64); needs the socket tracer. Env: TELEGEN_GO=0 disables'),
  rescan_ms: z.number().int().min(200).max(600_000).default(2000)
    .describe('How often /proc is scanned for new Go executables (one analysis and one set of uprobes per binary file, shared by every process running it)'),
  capture_max: z.number().int().min(1).max(16384).default(16384).describe('Plaintext bytes kept per Write/Read call'),
}).strict();
export type GoTracerConfig = z.infer<typeof goTracerSchema>;
