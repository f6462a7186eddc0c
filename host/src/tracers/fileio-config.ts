import { z } from 'zod';

export const fileioTracerSchema = z.object({
  enabled: z.boolean().default(false).describe('File I/O latency and sizes per process and directory (openat/read/write/pread64/pwrite64/fsync/close); off by default because it sees every process on the host'),
  files_max: z.number().int().min(1024).max(1 << 22).default(65536).describe('Open files (fd → path) tracked at once in the kernel'),
  ring_bytes: z.number().int().min(1 << 12).max(1 << 28).default(1 << 22)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two').describe('Operation ring size in bytes (power of two); a full ring is counted on /metrics'),
  slow_ms: z.number().min(0).default(100).describe('Operations at least this slow become log records (0 logs every operation)'),
  max_directories: z.number().int().min(1).max(100_000).default(200).describe('Distinct directories kept as attribute values; later ones are reported as "other"'),
  directory_depth: z.number().int().min(1).max(64).default(3).describe('file.directory keeps at most this many leading path components (/var/lib/postgresql/15/main/base → /var/lib/postgresql), so per-file directories do not use up max_directories'),
  sweep_ms: z.number().int().min(100).max(600_000).default(10_000).describe('How often fd entries of processes that exited without closing are removed from the kernel map'),
  poll_ms: z.number().int().min(10).max(10_000).default(100).describe('How often the ring is drained'),
}).strict();
export type FileioTracerConfig = z.infer<typeof fileioTracerSchema>;
