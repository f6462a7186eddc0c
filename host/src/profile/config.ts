// tracers.profile: the CPU profiler. On by default because it is cheap: 99 Hz per CPU on the
// software clock (≈200 samples/s on two cores), counts aggregated in the kernel, one drain
// every interval; symbol tables are read once per build-id.
import { z } from 'zod';

export const profileSchema = z.object({
  enabled: z.boolean().default(true).describe('Sample on-CPU stacks of every process (or the target below)'),
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
