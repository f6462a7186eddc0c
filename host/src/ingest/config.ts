import { z } from 'zod';
import { envNumber } from '../memory/overload';

/** Records the native reader hands one ring handler call at most (its own cap is 4096). 256 took
 *  6-10 MiB off a burst's peak by the 1 s samples (each call's spans die young instead of being
 *  promoted), and the same records replayed cost less CPU in 256-record calls (8.9-9.7 against
 *  11.3 µs a record). It is not the default: by the kernel's high-water mark, with the contention
 *  budget's resume minimum, 2 of 3 rounds reached 120 MiB against 112-122 at 4096, and the burst
 *  made fewer spans in 3 of 3 (bench/README.md "Ring batch size"). */
export const MAX_BATCH = 4096;

export const socketTracerSchema = z.object({
  enabled: z.boolean().default(true).describe('Capture socket payloads with syscall tracepoints. Env: TELEGEN_SOCKET_ENABLED'),
  ring_bytes: z.number().int().min(1 << 16).max(1 << 30).default(16 << 20)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two')
    .describe('BPF ring buffer size in bytes (power of two). Env: TELEGEN_RING_BYTES'),
  capture_max: z.number().int().min(64).max(32768).default(16384).describe('Payload bytes captured per syscall'),
  capture_tail: z.number().int().min(0).max(32768).default(16384)
    .describe('Of a TCP call longer than capture_max, payload bytes also kept from its end, the bytes between reported lost: one write or read often ends with what closes an exchange (HTTP/2 END_STREAM, gRPC trailers, the frames after a big message). At most capture_max is used, so a lower capture_max cuts the tails too. 0 keeps the head only'),
  conn_max: z.number().int().min(1024).max(1 << 22).default(1 << 20).describe('Connections tracked in the kernel LRU hash'),
  target_pid: z.number().int().min(0).default(0).describe('Trace only this process (0 = every process)'),
  iov_walk: z.enum(['auto', 'loop', 'unrolled']).default('auto')
    .describe('How readv/writev/sendmsg/recvmsg buffers are walked: bpf_loop over every iovec (kernel 5.17+), or the first 10 unrolled; auto = bpf_loop where the kernel has it'),
  max_batch: z.number().int().min(1).max(4096).default(envNumber('TELEGEN_RING_MAX_BATCH', MAX_BATCH))
    .describe('Ring records handed to one ingest call at most (1..4096): every span a call builds stays reachable until it returns, so a reader resuming over a full ring builds fewer spans at once with a smaller value; more calls cost more per record. Env: TELEGEN_RING_MAX_BATCH'),
}).strict();
