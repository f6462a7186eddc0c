// tracers.profile: the CPU profiler. Off by default. Sampling is cheap (99 Hz per CPU on the
// software clock, counts aggregated in the kernel: the profiled workload's CPU time did not move
// in bench/profiler.bench.ts) and symbolization runs on a worker thread, so the agent's main
// thread only drains the kernel maps. But symbolizing every process of a busy host (new
// processes, JIT code, c++filt) kept that worker busy for most of a core on the shared 2-core
// machine (bench/README.md), above the seed's 1% agent CPU budget; the seed's "profiles
// enabled" default waits for that to come down. Target pids/services/containers to bound it.
import { z } from 'zod';

export const profileSchema = z.object({
  enabled: z.boolean().default(false).describe('Sample on-CPU stacks of every process (or the target below)'),
  frequency_hz: z.number().int().min(1).max(1000).default(99).describe('Samples per second per CPU (software cpu-clock; 99 avoids lockstep with 100 Hz timers)'),
  interval_ms: z.number().int().min(100).max(600_000).default(10_000).describe('How often counts are drained, symbolized and exported'),
  pids: z.array(z.number().int().positive()).default([]).describe('Only these processes (with services/containers: any of them). Empty: all'),
  services: z.array(z.string().min(1)).default([]).describe('Only processes whose service.name (OTEL_SERVICE_NAME or executable name) is one of these'),
  containers: z.array(z.string().min(1)).default([]).describe('Only processes in these containers (container id or its 12-char prefix)'),
  pprof: z.object({
    enabled: z.boolean().default(true).describe('Write one gzipped pprof file per interval to DATA_DIR/pprof/'),
    max_files: z.number().int().min(1).max(100_000).default(360).describe('Oldest pprof files are removed past this count'),
  }).strict().default({}),
  link_wait_ms: z.number().int().min(0).max(60_000).default(2000).describe('How long an interval\'s samples wait for the spans of requests in flight when it ended (trace links)'),
  window_seconds: z.number().int().min(10).max(86_400).default(900).describe('Intervals kept in memory for GET /api/profile'),
  max_elf_symbols: z.number().int().min(10_000).default(4_000_000).describe('Symbols cached across ELF files (bounded memory)'),
}).strict();

export type ProfileConfig = z.infer<typeof profileSchema>;
