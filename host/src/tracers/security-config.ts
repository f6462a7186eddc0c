import { z } from 'zod';

export const securityTracerSchema = z.object({
  enabled: z.boolean().default(false).describe('Security monitor: exec, set*id, capset, ptrace attach, bpf() loads, module loading, mount, watched-path opens and outbound connects, checked against policy_dir rules; matches become OTLP log records'),
  policy_dir: z.string().optional().describe('Directory of rule files (*.yaml). Default: policies/security of the install. Env: TELEGEN_SECURITY_POLICY_DIR'),
  reload_ms: z.number().int().min(100).max(600_000).default(2000).describe('How often policy_dir is checked for changed files (a valid change applies at once; an invalid one is logged and the previous rules stay)'),
  ring_bytes: z.number().int().min(1 << 12).max(1 << 28).default(1 << 22)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two').describe('Event ring buffer size in bytes (power of two)'),
  poll_ms: z.number().int().min(10).max(10_000).default(100).describe('How long after its first event the event ring is drained (its fd wakes the agent, nothing is polled while it is empty; events that come meanwhile are read together)'),
}).strict();
export type SecurityTracerConfig = z.infer<typeof securityTracerSchema>;
