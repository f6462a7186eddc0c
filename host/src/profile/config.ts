// tracers.profile: the CPU profiler. Off by default: sampling is cheap (99 Hz per CPU on the
// software clock, counts aggregated in the kernel), but symbolization runs on the agent's main
// thread and was seen to starve it on a loaded 2-core machine (bench/README.md). Turn it on in
// the config or at run time with PUT /api/profile/enabled.
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
  window_seconds: z.number().int().min(10).max(86_400).default(900).describe('Intervals kept in memory for GET /api/profile'),
  max_elf_symbols: z.number().int().min(10_000).default(4_000_000).describe('Symbols cached across ELF files (bounded memory)'),
}).strict();

export type ProfileConfig = z.infer<typeof profileSchema>;
