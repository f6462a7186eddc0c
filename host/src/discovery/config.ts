import { z } from 'zod';

export const serviceRuleSchema = z.object({
  name: z.string().min(1).describe('service.name to use when every given pattern matches'),
  exe: z.string().optional().describe('Regular expression on the executable name'),
  cmdline: z.string().optional().describe('Regular expression on the command line'),
  namespace: z.string().optional().describe('Regular expression on k8s.namespace.name'),
  container: z.string().optional().describe('Regular expression on k8s.container.name'),
}).strict();

export const discoverySchema = z.object({
  enabled: z.boolean().default(true).describe('Discover host, cloud, Kubernetes, services and runtimes; enrich spans with them'),
  scan_interval_ms: z.number().int().min(200).max(60_000).default(1000).describe('How often /proc is rescanned for new and exited processes'),
  socket_scan_interval_ms: z.number().int().min(500).max(600_000).default(2000).describe('How often listening sockets are re-read'),
  proc_root: z.string().default('/proc'),
  dmi_root: z.string().default('/sys/class/dmi/id').describe('DMI directory (tests point it at a fixture tree)'),
  port_hints: z.boolean().default(true).describe('Feed ports of recognised services (postgres, redis, …) to the decoder registry'),
  service_rules: z.array(serviceRuleSchema).default([]).describe('Ordered service.name rules, applied after OTEL_SERVICE_NAME/OTEL_RESOURCE_ATTRIBUTES'),
  cloud_metadata: z.object({
    enabled: z.boolean().default(false).describe('Ask the instance metadata service (one try, short timeout) for region, zone, account'),
    timeout_ms: z.number().int().min(50).max(5000).default(500),
    endpoint: z.string().default('http://169.254.169.254'),
  }).strict().default({}),
  kubernetes: z.object({
    enabled: z.enum(['auto', 'true', 'false']).default('auto').describe('auto: watch pods when running in a cluster'),
    node_name: z.string().optional().describe('This node (default: env NODE_NAME, else the host name)'),
    api_server: z.string().optional().describe('API server URL instead of the in-cluster config (tests, out-of-cluster)'),
    token_file: z.string().optional(),
    labels: z.array(z.string()).default(['app', 'app.kubernetes.io/name', 'app.kubernetes.io/version']).describe('Pod labels copied to k8s.pod.label.<key>'),
    annotations: z.array(z.string()).default([]).describe('Pod annotations copied to k8s.pod.annotation.<key>'),
  }).strict().default({}),
}).strict();
export type DiscoveryConfig = z.infer<typeof discoverySchema>;
