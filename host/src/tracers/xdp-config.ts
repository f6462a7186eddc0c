import { z } from 'zod';

export const xdpTracerSchema = z.object({
  enabled: z.boolean().default(true).describe('Per-flow packet/byte counts with XDP; runs only on the interfaces listed'),
  interfaces: z.array(z.string().min(1)).default([])
    .describe('Interfaces to attach to (generic mode where the driver has no native XDP, e.g. lo). Empty: the tracer stays off'),
  flow_max: z.number().int().min(1024).max(1 << 24).default(1 << 20).describe('Flows kept in the kernel LRU hash (least recently seen evicted)'),
  export_max_flows: z.number().int().min(1).max(100_000).default(1000).describe('Flows exported as metric series per collection, biggest by bytes first'),
  sample_every: z.number().int().min(0).default(0).describe('Copy the headers of every Nth packet to a log record (0 = off)'),
  ring_bytes: z.number().int().min(1 << 12).max(1 << 28).default(1 << 18)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two').describe('Header sample ring size in bytes (power of two)'),
  poll_ms: z.number().int().min(10).max(10_000).default(250).describe('How long after the first header sample the sample ring is drained (its fd wakes the agent; samples that come meanwhile are read together)'),
}).strict();
export type XdpTracerConfig = z.infer<typeof xdpTracerSchema>;
