import { z } from 'zod';

export const decodersSchema = z.object({
  dir: z.string().optional().describe('Directory of decoder .wasm files (default: build/decoders in the install). Env: TELEGEN_DECODERS_DIR'),
  disabled: z.array(z.string()).default([]).describe('Decoder names not to load'),
  detect_threshold: z.number().int().min(1).max(100).default(50).describe('Minimum detect() confidence to bind a decoder to a connection'),
  ports: z.record(z.array(z.number().int().min(1).max(65535))).default({})
    .describe('Extra server ports per decoder name, e.g. {http1: [8081]} (hints; detect() still decides)'),
  max_pending_bytes: z.number().int().min(1024).default(1 << 20).describe('Unconsumed bytes kept per stream direction before it is reset'),
}).strict();
export type DecodersConfig = z.infer<typeof decodersSchema>;
