import { z } from 'zod';

export const logsTracerSchema = z.object({
  enabled: z.boolean().default(false)
    .describe('Capture what selected processes write to stdout/stderr (fd 1/2) as OTLP log records linked to the request in flight on that thread (bpf/logs.bpf.c). Env: TELEGEN_LOGS=1 enables'),
  services: z.boolean().default(true).describe('Capture every process that accepts a TCP connection (selected in the kernel at accept), and those seen serving requests on older connections'),
  comms: z.array(z.string().min(1).max(15)).max(64).default([]).describe('Also capture processes with these names (as in /proc/PID/comm), from their first write'),
  pids: z.array(z.number().int().min(1)).max(1024).default([]).describe('Also capture these process ids'),
  processes_max: z.number().int().min(16).max(1 << 20).default(4096).describe('Processes captured at once (kernel pid map size; the children they fork, selected at fork for their inherited stdout/stderr, have a map of this size too); beyond, new services are not added and that is counted'),
  capture_max: z.number().int().min(64).max(4096).default(1024).describe('Bytes of one write kept; longer writes are cut and marked telegen.log.truncated'),
  max_line_bytes: z.number().int().min(64).max(65536).default(8192).describe('A line assembled from several writes is cut (and emitted) at this length'),
  lines_per_second: z.number().int().min(1).max(1_000_000).default(200).describe('Lines per process per second exported at most; the rest are counted on /metrics and dropped'),
  link_wait_ms: z.number().int().min(0).max(60_000).default(2000).describe('How long a line is held so the request it was written in can end and be correlated; a longer request leaves its early lines unlinked'),
  max_pending_lines: z.number().int().min(100).max(1_000_000).default(20_000).describe('Lines held for linking at most; beyond, the oldest are exported with what is known'),
  ring_bytes: z.number().int().min(1 << 12).max(1 << 28).default(1 << 22)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two').describe('Ring buffer size in bytes (power of two); a full ring is counted on /metrics'),
  poll_ms: z.number().int().min(10).max(10_000).default(100).describe('How often the ring is drained'),
}).strict();
export type LogsTracerConfig = z.infer<typeof logsTracerSchema>;
