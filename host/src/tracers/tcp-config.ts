import { z } from 'zod';

export const tcpTracerSchema = z.object({
  enabled: z.boolean().default(true).describe('TCP connection metrics from tracepoints (opens, closes, failures, RTT, retransmits, resets, bytes)'),
  conn_max: z.number().int().min(1024).max(1 << 22).default(65536).describe('Sockets tracked at once in the kernel hash (a full map is counted on /metrics)'),
  ring_bytes: z.number().int().min(1 << 12).max(1 << 28).default(1 << 22)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two').describe('Event ring buffer size in bytes (power of two)'),
  poll_ms: z.number().int().min(10).max(10_000).default(100).describe('How long after its first event the event ring is drained: its fd wakes the agent (nothing is polled while no connection opens or closes) and events that come meanwhile are read together, so at most one drain per poll_ms (4 events per connection; the former 1 MiB drained every 250 ms dropped events at ~3k connections/s on the loaded bench machine)'),
  cardinality_limit: z.number().int().min(1).max(1_000_000).default(2000).describe('Series per instrument (process × peer × service port × role [× direction]) before new attribute sets share one series with otel.metric.overflow=true; series of exited processes are forgotten after their last export, which frees room'),
  ports: z.array(z.number().int().min(1).max(65535)).max(1024).default([]).describe('Only connections whose service port is one of these (empty: every connection)'),
}).strict();
export type TcpTracerConfig = z.infer<typeof tcpTracerSchema>;
