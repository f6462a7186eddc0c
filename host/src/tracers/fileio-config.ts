import { z } from 'zod';
import { tg_fileio_limits as LIM } from '../generated/fileio-layout';

export const fileioTracerSchema = z.object({
  enabled: z.boolean().default(false).describe('File I/O latency and sizes per process and directory (open/openat/openat2, read/readv, write/writev, pread64/preadv/preadv2, pwrite64/pwritev/pwritev2, fsync/fdatasync, close; fds made by dup/dup2/dup3/F_DUPFD count for their file); off by default because it sees every process on the host'),
  files_max: z.number().int().min(1024).max(1 << 22).default(LIM.TG_FILEIO_FILES_MAX_DEFAULT).describe('Open files (fd → path) tracked at once in the kernel'),
  ring_bytes: z.number().int().min(1 << 12).max(1 << 28).default(LIM.TG_FILEIO_RING_BYTES_DEFAULT)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two').describe('Ring size in bytes (power of two) for slow and failed operations (every other one is only counted in the kernel histograms); a full ring is counted on /metrics'),
  slow_ms: z.number().min(0).default(100).describe('Operations at least this slow become log records (0 logs every operation, through the ring)'),
  max_directories: z.number().int().min(1).max(100_000).default(LIM.TG_FILEIO_DIRS_MAX_DEFAULT).describe('Distinct directories kept as attribute values (interned in the kernel at openat); later ones are reported as "other"'),
  histograms_max: z.number().int().min(64).max(1 << 20).default(LIM.TG_FILEIO_HIST_MAX_DEFAULT).describe('Kernel histograms (process × directory × operation) held at once; past it operations are counted in one overflow series per operation (telegen_bpf_fileio_hist_full_total). Entries of exited processes are deleted after their last export'),
  cardinality_limit: z.number().int().min(1).max(1_000_000).default(2000).describe('Series per instrument (process × directory × operation [× error.type]) before new attribute sets share one series with otel.metric.overflow=true; series of exited processes are forgotten after their last export, which frees room'),
  directory_depth: z.number().int().min(1).max(64).default(3).describe('file.directory keeps at most this many leading path components (/var/lib/postgresql/15/main/base → /var/lib/postgresql), so per-file directories do not use up max_directories'),
  sweep_ms: z.number().int().min(100).max(600_000).default(10_000).describe('How often fd entries of processes that exited without closing are removed from the kernel map'),
  poll_ms: z.number().int().min(10).max(10_000).default(100).describe('How long after its first record the ring of slow and failed operations is drained (its fd wakes the agent, nothing is polled while it is empty; records that come meanwhile are read together); the histograms are read at each metric collection'),
}).strict();
export type FileioTracerConfig = z.infer<typeof fileioTracerSchema>;
