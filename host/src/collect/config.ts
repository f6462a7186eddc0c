// `telegen collect` config: the agent's data_dir/api/otlp keys plus `collect:` (interval and the
// remote targets). Validated strictly like the agent config.
import * as fs from 'fs';
import * as path from 'path';
import YAML from 'yaml';
import { z } from 'zod';
import { apiSchema } from '../api/config';
import { ConfigError, formatZodError } from '../config';

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/, 'a short identifier (letters, digits, . _ : / -)')
  .describe('Stable target id: the sharding key and the telegen.target.id attribute');

export const prometheusTargetSchema = z.object({
  id,
  type: z.literal('prometheus'),
  url: z.string().url().describe('Prometheus text or OpenMetrics endpoint, e.g. http://host:9100/metrics'),
  headers: z.record(z.string()).default({}),
}).strict();

export const postgresTargetSchema = z.object({
  id,
  type: z.literal('postgresql'),
  url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgresql:// connection URL')
    .describe('libpq-style URL; a password may come from PGPASSWORD instead'),
  statements: z.boolean().default(true).describe('Read pg_stat_statements when the extension is installed'),
  statements_limit: z.number().int().min(1).max(1000).default(50).describe('Top statements by total execution time'),
}).strict();

export const kafkaTargetSchema = z.object({
  id,
  type: z.literal('kafka'),
  brokers: z.array(z.string().regex(/^[^:\s]+:\d+$/, 'HOST:PORT')).min(1),
  client_id: z.string().default('telegen-collector'),
  groups: z.array(z.string().min(1)).default([]).describe('Consumer groups to report lag for in addition to those ListGroups returns (brokers or proxies without ListGroups)'),
}).strict();

export const targetSchema = z.discriminatedUnion('type', [prometheusTargetSchema, postgresTargetSchema, kafkaTargetSchema]);
export type Target = z.infer<typeof targetSchema>;

export const collectSchema = z.object({
  interval_ms: z.number().int().min(100).default(15_000).describe('How often each owned target is polled (and metrics exported)'),
  timeout_ms: z.number().int().min(100).default(10_000).describe('Per-poll deadline'),
  concurrency: z.number().int().min(1).max(256).default(16).describe('Polls in flight at once'),
  replicas: z.number().int().min(1).optional().describe('Replica count. Env: TELEGEN_REPLICAS (the StatefulSet overlay sets it from spec.replicas)'),
  replica_index: z.number().int().min(0).optional().describe('This replica\'s ordinal. Env: TELEGEN_REPLICA_INDEX, else the "-N" suffix of TELEGEN_POD_NAME'),
  targets: z.array(targetSchema).default([]),
}).strict().superRefine((c, ctx) => {
  const seen = new Set<string>();
  c.targets.forEach((t, i) => {
    if (seen.has(t.id)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['targets', i, 'id'], message: `duplicate target id "${t.id}"` });
    seen.add(t.id);
  });
});

export const collectConfigSchema = z.object({
  data_dir: z.string().default(process.env.TELEGEN_DATA_DIR || '/var/lib/telegen'),
  service_name: z.string().optional(),
  api: apiSchema.default({}),
  collect: collectSchema.default({}),
  otlp: z.unknown().optional(),
}).strict();
export type CollectConfig = z.infer<typeof collectConfigSchema>;

export function parseCollectConfig(raw: unknown, source = '(inline)'): CollectConfig {
  const r = collectConfigSchema.safeParse(raw ?? {});
  if (!r.success) throw new ConfigError(formatZodError(r.error, source));
  return r.data;
}

export function loadCollectConfig(file: string | undefined): CollectConfig {
  if (!file) return parseCollectConfig({}, '(defaults)');
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw new ConfigError(`cannot read config ${file}: ${(e as Error).message}`); }
  let raw: unknown;
  try { raw = path.extname(file) === '.json' ? JSON.parse(text) : YAML.parse(text); } catch (e) { throw new ConfigError(`config ${file} is not valid: ${(e as Error).message}`); }
  return parseCollectConfig(raw, file);
}
