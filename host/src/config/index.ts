// Root config: composes each stage's schema (each lives beside its stage) into one default config.
// A file (YAML or JSON) is validated strictly: a wrong key or value names the key and what is allowed.
import * as fs from 'fs';
import * as path from 'path';
import YAML from 'yaml';
import { z } from 'zod';
import { socketTracerSchema } from '../ingest/config';
import { pipelineSchema } from '../pipeline/config';
import { decodersSchema } from '../decoders/config';
import { apiSchema } from '../api/config';
import { discoverySchema } from '../discovery/config';
import { profileSchema } from '../profile/config';
import { tlsTracerSchema } from '../tracers/tls-config';
import { tcpTracerSchema } from '../tracers/tcp-config';
import { xdpTracerSchema } from '../tracers/xdp-config';
import { fileioTracerSchema } from '../tracers/fileio-config';
import { goTracerSchema } from '../tracers/go-config';
import { securityTracerSchema } from '../tracers/security-config';
import { logsTracerSchema } from '../tracers/logs-config';
import { securitySchema } from '../security/config';
import { overloadSchema } from '../memory/overload';
import { LOG_LEVELS } from '../log';

export const configSchema = z.object({
  data_dir: z.string().default(process.env.TELEGEN_DATA_DIR || '/var/lib/telegen')
    .describe('Where OTLP/JSON files are written when no OTLP endpoint is set. Env: TELEGEN_DATA_DIR'),
  policy_file: z.string().optional().describe('Sandbox/hot-swap/redaction policy (YAML). Default: policies/default.yaml of the install. Env: TELEGEN_POLICY_FILE'),
  log_level: z.enum(LOG_LEVELS).default((LOG_LEVELS as readonly string[]).includes(process.env.TELEGEN_LOG_LEVEL ?? '') ? process.env.TELEGEN_LOG_LEVEL as (typeof LOG_LEVELS)[number] : 'info')
    .describe('Level of the agent\'s own log (stderr, JSON lines); applies on SIGHUP too. Env: TELEGEN_LOG_LEVEL'),
  service_name: z.string().optional().describe('Fallback service.name for the agent itself. Env: OTEL_SERVICE_NAME'),
  api: apiSchema.default({}),
  agent: overloadSchema.default({}).describe('The agent itself when overloaded: CPU budget, memory bound and shedding (host/src/memory/overload.ts)'),
  tracers: z.object({
    socket: socketTracerSchema.default({}),
    profile: profileSchema.default({}),
    tls: tlsTracerSchema.default({}),
    tcp: tcpTracerSchema.default({}),
    xdp: xdpTracerSchema.default({}),
    fileio: fileioTracerSchema.default({}),
    go: goTracerSchema.default({}),
    security: securityTracerSchema.default({}),
    logs: logsTracerSchema.default({}),
  }).strict().default({}),
  decoders: decodersSchema.default({}),
  pipeline: pipelineSchema.default({}),
  discovery: discoverySchema.default({}),
  security: securitySchema.default({}),
  otlp: z.unknown().optional().describe('OTLP export, validated by host/src/export/config.ts (otlp.endpoint, protocol, compression, per-signal enabled/batch_size …)'),
}).strict();

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(message: string) { super(message); this.name = 'ConfigError'; }
}

/** The object schema at `at` inside `schema` (through defaults, optionals and refinements). */
function objectAt(schema: z.ZodTypeAny, at: Array<string | number>): z.AnyZodObject | undefined {
  let s: z.ZodTypeAny | undefined = schema;
  const unwrap = (t: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (t instanceof z.ZodDefault) t = t._def.innerType;
      else if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap();
      else if (t instanceof z.ZodEffects) t = t.innerType();
      else return t;
    }
  };
  for (const k of at) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodTypeAny>)[String(k)];
    else if (s instanceof z.ZodArray) s = s.element;
    else if (s instanceof z.ZodRecord) s = s.valueSchema;
    else return undefined;
    if (!s) return undefined;
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? s : undefined;
}

/** Where a value came from when it was not the file: `api.listen` → `--api-listen`. */
export type ConfigOrigins = Record<string, string>;

/** Keys whose default is read from an environment variable (the schema's .default(env …)). */
export const ENV_DEFAULTS: Record<string, string> = {
  data_dir: 'TELEGEN_DATA_DIR',
  log_level: 'TELEGEN_LOG_LEVEL',
  'agent.max_cpu_percent': 'TELEGEN_MAX_CPU_PERCENT',
  'agent.contended_cpu_percent': 'TELEGEN_CONTENDED_CPU_PERCENT',
  'agent.max_rss_mb': 'TELEGEN_MAX_RSS_MB',
  'agent.shed_export_backlog_percent': 'TELEGEN_SHED_EXPORT_BACKLOG_PERCENT',
  'tracers.socket.max_batch': 'TELEGEN_RING_MAX_BATCH',
};

/** One line per problem: `tracers.socket.capture_max: Number must be less than or equal to 65536`.
 *  With `schema`, an unknown key is listed with the keys allowed there (as otlp.* always was);
 *  with `origins`, a value set by a flag or an environment variable says so. */
export function formatZodError(err: z.ZodError, source: string, schema?: z.ZodTypeAny, origins: ConfigOrigins = {}): string {
  const lines = err.issues.map((i) => {
    const where = i.path.length ? i.path.join('.') : '(top level)';
    const from = origins[i.path.join('.')] ? ` (set by ${origins[i.path.join('.')]})` : '';
    if (i.code === 'unrecognized_keys') {
      const obj = schema ? objectAt(schema, i.path) : undefined;
      const allowed = obj ? ` (allowed: ${Object.keys(obj.shape).join(', ')})` : '';
      return `${where}: unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')}${allowed}`;
    }
    if (i.code === 'invalid_enum_value') return `${where}${from}: "${String(i.received)}" is not allowed; use one of ${i.options.map(String).join(', ')}`;
    return `${where}${from}: ${i.message}`;
  });
  return `invalid config ${source}:\n  ${lines.join('\n  ')}`;
}

export function parseConfig(raw: unknown, source = '(inline)', origins: ConfigOrigins = {}): Config {
  const r = configSchema.safeParse(raw ?? {});
  if (!r.success) throw new ConfigError(formatZodError(r.error, source, configSchema, origins));
  return r.data;
}

/** Numeric environment defaults that are not numbers were ignored (TELEGEN_MAX_RSS_MB=abc ran
 *  with 128): refuse them, naming the variable and the key it sets. */
export function checkEnvDefaults(env: NodeJS.ProcessEnv = process.env): void {
  for (const [key, name] of Object.entries(ENV_DEFAULTS)) {
    const v = env[name];
    if (v === undefined || v === '' || !(key.startsWith('agent.') || key === 'tracers.socket.max_batch')) continue;
    if (!Number.isFinite(Number(v))) throw new ConfigError(`${name}: "${v}" is not a number (it sets ${key})`);
  }
}

function hasPath(o: unknown, p: string[]): boolean {
  let cur = o;
  for (const k of p) {
    if (!cur || typeof cur !== 'object' || !(k in (cur as Record<string, unknown>))) return false;
    cur = (cur as Record<string, unknown>)[k];
  }
  return true;
}

/** The file, then `overrides` over it. `overrideOrigins` names the flag (or variable) behind each
 *  overridden key, so a bad `--api-listen` is not reported as a bad "(defaults)". */
export function loadConfig(file?: string, overrides: Record<string, unknown> = {}, overrideOrigins: ConfigOrigins = {}): Config {
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw new ConfigError(`cannot read config ${file}: ${(e as Error).message}`); }
    try { raw = (path.extname(file) === '.json' ? JSON.parse(text) : YAML.parse(text)) ?? {}; } catch (e) { throw new ConfigError(`config ${file} is not valid ${path.extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`); }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config ${file} must be a mapping at the top level`);
  }
  checkEnvDefaults();
  // A key the file does not set took its default from the environment: say which variable.
  const origins: ConfigOrigins = {};
  for (const [key, name] of Object.entries(ENV_DEFAULTS)) if (process.env[name] && !hasPath(raw, key.split('.'))) origins[key] = `${name}=${process.env[name]}`;
  Object.assign(origins, overrideOrigins);
  return parseConfig(deepMerge(raw, overrides), file ?? '(defaults: no --config file)', origins);
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    const cur = out[k];
    out[k] = cur && typeof cur === 'object' && !Array.isArray(cur) && v && typeof v === 'object' && !Array.isArray(v)
      ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}
