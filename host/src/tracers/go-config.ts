import { z } from 'zod';

export const goTracerSchema = z.object({
  enabled: z.boolean().default(true).describe('Go TLS plaintext from uprobes on crypto/tls.(*Conn).Write/Read in Go binaries (stripped too; Go >= 1.17, amd64); needs the socket tracer. Env: TELEGEN_GO=0 disables'),
  rescan_ms: z.number().int().min(200).max(600_000).default(2000)
    .describe('How often /proc is scanned for new Go executables (one analysis and one set of uprobes per binary file, shared by every process running it) when exec events cannot be had (no tp_btf); with them, see safety_rescan_ms'),
  safety_rescan_ms: z.number().int().min(200).max(3_600_000).default(30_000)
    .describe('With exec events (new files and every exec of a hooked file are reported, exits of its processes too) the full /proc scan is only a safety net (a process forked without exec): this often'),
  capture_max: z.number().int().min(1).max(16384).default(16384).describe('Plaintext bytes kept per Write/Read call'),
  exec_poll_ms: z.number().int().min(5).max(5000).default(20).describe('Exec/exit events (sched_process_exec/exit) are read as soon as the ring holds one (its fd wakes the agent; a new Go executable is analyzed and hooked when it starts, not at the next rescan); this is how often they are read where the fd cannot be watched'),
  exec_hold: z.boolean().default(false).describe('Stop a new, possibly-Go executable (static ELF, no controlling terminal; first exec of the file only) with SIGSTOP until its probes are in, then SIGCONT, so even its first request is traced. Off by default: a process stopped when the agent is killed at that moment stays stopped'),
  http2_headers: z.boolean().default(true).describe('HTTP/2 header fields from Go\'s own HPACK encoder/decoder (net/http bundled http2, golang.org/x/net/http2), so connections older than the agent still name :path and :authority. Env: TELEGEN_GO_HTTP2=0 disables'),
}).strict();
export type GoTracerConfig = z.infer<typeof goTracerSchema>;
