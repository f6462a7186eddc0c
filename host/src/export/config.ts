// Export configuration: the seed's `otlp:` YAML section, the OTEL_EXPORTER_OTLP_* environment
// variables, and how the two combine into one ResolvedExportConfig per signal.
//
// Precedence, highest first (per key, per signal):
//   1. OTEL_EXPORTER_OTLP_<SIGNAL>_<KEY>   per-signal env var
//   2. otlp.<signal>.<key>                 per-signal file value (only `endpoint` exists per signal in the file)
//   3. OTEL_EXPORTER_OTLP_<KEY>            generic env var
//   4. otlp.<key>                          generic file value
//   5. built-in default
// i.e. "signal-specific beats generic" (the OpenTelemetry spec's rule for its env vars) is applied
// first and uniformly across both sources, and at the same specificity the environment beats the
// file (as OBI/Beyla do: a DaemonSet's env is the operator's last word over a baked-in file).
// Keys that have no OTEL_* variable have a TELEGEN_* one (named in each key's description); those
// beat the file value too.
//
// Endpoints follow the spec: a per-signal HTTP endpoint is used as is; a generic HTTP endpoint gets
// `/v1/<signal>` appended; gRPC endpoints are host:port (scheme optional). With no endpoint at all a
// signal goes to the embedded OTLP/JSON file exporter.
import { z } from 'zod';

export const SIGNALS = ['traces', 'metrics', 'logs', 'profiles'] as const;
export type Signal = (typeof SIGNALS)[number];

const MB = 1024 * 1024;

/** Defaults from the seed ARCHITECTURE.md ("Export Pipeline", "Memory Architecture"). */
/**
 * Batches in flight per signal. Not a seed key. 4 rather than 2: a batch waits on gzip (libuv's
 * pool), the network and the receiver, and with two in flight the sender's event loop sat idle
 * between them — log records 167k → 183k/s, 173k → 218k/s, 75k → 92k/s, 150k → 149k/s, spans
 * 54k → 60k/s, 73k → 83k/s in alternating rounds (bench/README.md); the bytes in flight count
 * against the queue caps either way.
 */
export const DEFAULT_MAX_CONCURRENT_EXPORTS = 4;

export const SIGNAL_DEFAULTS: Record<Signal, { batch_size: number; queue_bytes: number }> = {
  traces: { batch_size: 512, queue_bytes: 256 * MB },
  metrics: { batch_size: 1000, queue_bytes: 128 * MB },
  logs: { batch_size: 1000, queue_bytes: 256 * MB },
  // The seed gives no profiles queue size; profiles are few and large, 64 MB bounds them.
  profiles: { batch_size: 100, queue_bytes: 64 * MB },
};

/**
 * Trace queue cap when traces go to the embedded file exporter and queue_bytes is not set. The
 * seed's 256 MB rides out a receiver outage over the network; a local file write only falls behind
 * when the agent is short of CPU, and then a deeper queue only holds more memory (a 15 s burst left
 * the file exporter 103-107 MiB behind: RSS 168-186 MiB against the 100 MB aim, bench/README.md
 * "Agent memory"). What does not fit is dropped and counted (queue_full), as with any cap.
 */
export const FILE_MODE_QUEUE_BYTES: Partial<Record<Signal, number>> = { traces: 32 * MB };

const up = (s: Signal) => s.toUpperCase();

function signalSchema(signal: Signal) {
  const d = SIGNAL_DEFAULTS[signal];
  return z
    .object({
      enabled: z
        .boolean()
        .default(true)
        .describe(`Export ${signal}. Env: TELEGEN_OTLP_${up(signal)}_ENABLED (or OTEL_${up(signal)}_EXPORTER=none)`),
      batch_size: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(d.batch_size)
        .describe(`Items per export request for ${signal} (default ${d.batch_size}). Env: TELEGEN_OTLP_${up(signal)}_BATCH_SIZE`),
      endpoint: z
        .string()
        .min(1)
        .optional()
        .describe(
          `Endpoint for ${signal} only, overriding otlp.endpoint; used as is (an HTTP URL must include its path, e.g. /v1/${signal}). Env: OTEL_EXPORTER_OTLP_${up(signal)}_ENDPOINT`,
        ),
      queue_bytes: z
        .number()
        .int()
        .min(1024)
        .default(d.queue_bytes)
        .describe(
          `Memory bound of the ${signal} export queue in bytes (estimated; default ${d.queue_bytes / MB} MB${FILE_MODE_QUEUE_BYTES[signal] ? `, ${FILE_MODE_QUEUE_BYTES[signal]! / MB} MB when written to files` : ''}). Env: TELEGEN_OTLP_${up(signal)}_QUEUE_BYTES`,
        ),
    })
    .strict()
    .default({})
    .describe(`Per-signal settings for ${signal}`);
}

export const otlpConfigSchema = z
  .object({
    endpoint: z
      .string()
      .min(1)
      .optional()
      .describe(
        'OTLP endpoint for every signal (gRPC: host:port or http(s)://host:port; HTTP: base URL, /v1/<signal> is appended). Unset: OTLP/JSON files in the data dir. Env: OTEL_EXPORTER_OTLP_ENDPOINT',
      ),
    protocol: z
      .enum(['grpc', 'http'])
      .default('grpc')
      .describe('OTLP transport: grpc or http (HTTP/protobuf). Env: OTEL_EXPORTER_OTLP_PROTOCOL (grpc | http/protobuf)'),
    compression: z
      .enum(['gzip', 'none'])
      .default('gzip')
      .describe('Request compression. Env: OTEL_EXPORTER_OTLP_COMPRESSION'),
    timeout_ms: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe('Timeout of one export request in ms. Env: OTEL_EXPORTER_OTLP_TIMEOUT'),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe('Extra request headers / gRPC metadata. Env: OTEL_EXPORTER_OTLP_HEADERS (k1=v1,k2=v2, values URL-encoded)'),
    tls: z
      .object({
        ca_file: z.string().min(1).optional().describe('PEM CA bundle to verify the server. Env: OTEL_EXPORTER_OTLP_CERTIFICATE'),
        cert_file: z.string().min(1).optional().describe('PEM client certificate (mTLS). Env: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE'),
        key_file: z.string().min(1).optional().describe('PEM client key (mTLS). Env: OTEL_EXPORTER_OTLP_CLIENT_KEY'),
        insecure: z
          .boolean()
          .optional()
          .describe(
            'Plaintext (no TLS). Unset: plaintext for http:// or scheme-less endpoints without TLS files, TLS for https://. Env: OTEL_EXPORTER_OTLP_INSECURE',
          ),
      })
      .strict()
      .default({})
      .describe('TLS settings for the OTLP connection'),
    retry: z
      .object({
        max_attempts: z
          .number()
          .int()
          .min(1)
          .max(100)
          .default(5)
          .describe('Attempts per batch (first try included) on retryable errors. Env: TELEGEN_OTLP_RETRY_MAX_ATTEMPTS'),
        initial_backoff_ms: z
          .number()
          .int()
          .min(0)
          .default(1000)
          .describe('First retry delay in ms; doubles per attempt, with jitter. Env: TELEGEN_OTLP_RETRY_INITIAL_BACKOFF_MS'),
        max_backoff_ms: z
          .number()
          .int()
          .min(0)
          .default(30_000)
          .describe('Cap of the retry delay in ms (a server Retry-After may ask for longer). Env: TELEGEN_OTLP_RETRY_MAX_BACKOFF_MS'),
      })
      .strict()
      .default({})
      .describe('Retries with exponential backoff and jitter for retryable results'),
    drop_policy: z
      .enum(['drop_newest', 'drop_oldest'])
      .default('drop_newest')
      .describe('What a full queue drops: the item being added, or the oldest queued ones. Env: TELEGEN_OTLP_DROP_POLICY'),
    flush_interval_ms: z
      .number()
      .int()
      .min(1)
      .default(5000)
      .describe('Export a partial batch after this many ms. Env: TELEGEN_OTLP_FLUSH_INTERVAL_MS'),
    max_concurrent_exports: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(DEFAULT_MAX_CONCURRENT_EXPORTS)
      .describe(`Export requests in flight per signal (default ${DEFAULT_MAX_CONCURRENT_EXPORTS}). Env: TELEGEN_OTLP_MAX_CONCURRENT_EXPORTS`),
    shutdown_timeout_ms: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('Deadline to flush queues on shutdown; what is left is counted as dropped. Env: TELEGEN_OTLP_SHUTDOWN_TIMEOUT_MS'),
    file: z
      .object({
        max_bytes: z
          .number()
          .int()
          .min(1024)
          .default(100 * MB)
          .describe('Rotate <signal>.jsonl when it would exceed this size. Env: TELEGEN_OTLP_FILE_MAX_BYTES'),
        keep: z
          .number()
          .int()
          .min(0)
          .max(1000)
          .default(5)
          .describe('Rotated files kept (<signal>.jsonl.1 … .N). Env: TELEGEN_OTLP_FILE_KEEP'),
      })
      .strict()
      .default({})
      .describe('Embedded OTLP/JSON file exporter (used when no endpoint is set)'),
    traces: signalSchema('traces'),
    metrics: signalSchema('metrics'),
    logs: signalSchema('logs'),
    profiles: signalSchema('profiles'),
  })
  .strict()
  .describe('OTLP export (seed "Export Pipeline")');

export type OtlpConfigInput = z.input<typeof otlpConfigSchema>;
export type OtlpConfig = z.output<typeof otlpConfigSchema>;

export interface ResolvedTls {
  insecure: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface ResolvedSignalExport {
  signal: Signal;
  enabled: boolean;
  /** 'file' when no endpoint resolved for this signal (the embedded default). */
  mode: 'file' | 'otlp';
  protocol: 'grpc' | 'http';
  /** gRPC: http(s)://host:port; HTTP: full URL including /v1/<signal>. Unset in file mode. */
  endpoint?: string;
  headers: Record<string, string>;
  compression: 'gzip' | 'none';
  timeoutMs: number;
  tls: ResolvedTls;
  retry: { maxAttempts: number; initialBackoffMs: number; maxBackoffMs: number };
  batchSize: number;
  queueBytes: number;
  dropPolicy: 'drop_newest' | 'drop_oldest';
  flushIntervalMs: number;
  maxConcurrentExports: number;
}

export interface ResolvedExportConfig {
  traces: ResolvedSignalExport;
  metrics: ResolvedSignalExport;
  logs: ResolvedSignalExport;
  profiles: ResolvedSignalExport;
  shutdownTimeoutMs: number;
  file: { maxBytes: number; keep: number };
  /** Where each resolved value came from, e.g. {'traces.endpoint': 'env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'}. */
  sources: Record<string, string>;
}

/** Thrown for a bad file value or env var; the message names the key and what is allowed. */
export class ExportConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportConfigError';
  }
}

/** One line per problem: `otlp.traces.batch_sise: unrecognized key (allowed: enabled, batch_size, …)`. */
export function formatZodError(err: z.ZodError, prefix = 'otlp'): string {
  return err.issues
    .map((issue) => {
      const at = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      if (issue.code === 'unrecognized_keys') {
        const allowed = allowedKeysAt(issue.path.map(String));
        return issue.keys
          .map((k) => `${at}.${k}: unknown key${allowed ? ` (allowed: ${allowed.join(', ')})` : ''}`)
          .join('\n');
      }
      if (issue.code === 'invalid_enum_value') {
        return `${at}: ${JSON.stringify(issue.received)} is not allowed (allowed: ${issue.options.join(', ')})`;
      }
      return `${at}: ${issue.message}`;
    })
    .join('\n');
}

function allowedKeysAt(path: string[]): string[] | undefined {
  let s: z.ZodTypeAny = otlpConfigSchema;
  for (const p of [...path, '']) {
    while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodEffects) {
      s = s instanceof z.ZodEffects ? s.innerType() : s._def.innerType;
    }
    if (!(s instanceof z.ZodObject)) return undefined;
    if (p === '') return Object.keys(s.shape);
    s = s.shape[p];
    if (!s) return undefined;
  }
  return undefined;
}

/** Validates the `otlp:` section of a config file (undefined → all defaults). */
export function parseOtlpConfig(input: unknown): OtlpConfig {
  const r = otlpConfigSchema.safeParse(input ?? {});
  if (!r.success) throw new ExportConfigError(formatZodError(r.error));
  return r.data;
}

/** OTEL_EXPORTER_OTLP_HEADERS: `k1=v1,k2=v2`, keys and values URL-encoded (W3C baggage-like). */
export function parseOtelHeaders(raw: string, envName: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of raw.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ExportConfigError(`${envName}: "${part.trim()}" is not key=value (expected k1=v1,k2=v2)`);
    const key = decodeURIComponent(part.slice(0, eq).trim());
    const value = decodeURIComponent(part.slice(eq + 1).trim());
    out[key] = value;
  }
  return out;
}

type Env = Record<string, string | undefined>;

interface Picked<T> {
  value: T;
  source: string;
}

function envStr(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function parseEnvInt(env: Env, name: string, min: number): number | undefined {
  const v = envStr(env, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new ExportConfigError(`${name}: "${v}" is not allowed (an integer ≥ ${min})`);
  return Number(v);
}

function parseEnvBool(env: Env, name: string): boolean | undefined {
  const v = envStr(env, name);
  if (v === undefined) return undefined;
  const l = v.toLowerCase();
  if (l === 'true') return true;
  if (l === 'false') return false;
  throw new ExportConfigError(`${name}: "${v}" is not allowed (true or false)`);
}

function parseEnvProtocol(env: Env, name: string): 'grpc' | 'http' | undefined {
  const v = envStr(env, name);
  if (v === undefined) return undefined;
  if (v === 'grpc') return 'grpc';
  if (v === 'http/protobuf' || v === 'http') return 'http';
  throw new ExportConfigError(`${name}: "${v}" is not allowed (grpc, http/protobuf)`);
}

function parseEnvCompression(env: Env, name: string): 'gzip' | 'none' | undefined {
  const v = envStr(env, name);
  if (v === undefined) return undefined;
  if (v === 'gzip' || v === 'none') return v;
  throw new ExportConfigError(`${name}: "${v}" is not allowed (gzip, none)`);
}

function parseEnvDropPolicy(env: Env, name: string): 'drop_newest' | 'drop_oldest' | undefined {
  const v = envStr(env, name);
  if (v === undefined) return undefined;
  if (v === 'drop_newest' || v === 'drop_oldest') return v;
  throw new ExportConfigError(`${name}: "${v}" is not allowed (drop_newest, drop_oldest)`);
}

/** First defined candidate wins; candidates are listed highest precedence first. */
function pick<T>(candidates: Array<[T | undefined, string]>, fallback: T): Picked<T> {
  for (const [v, source] of candidates) if (v !== undefined) return { value: v, source };
  return { value: fallback, source: 'default' };
}

function hasScheme(endpoint: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint);
}

/**
 * Turns an endpoint into the URL the exporter needs.
 * - gRPC: `host:port` → `http://host:port` (or https:// when TLS applies); a scheme is kept.
 * - HTTP: a generic endpoint is a base URL, `/v1/<signal>` is appended (spec); a per-signal one is used as is.
 */
function endpointUrl(endpoint: string, protocol: 'grpc' | 'http', signal: Signal, perSignal: boolean, tlsWanted: boolean): string {
  let url = hasScheme(endpoint) ? endpoint : `${tlsWanted ? 'https' : 'http'}://${endpoint}`;
  // Profiles are still a development signal: the Collector serves them at /v1development/profiles.
  if (protocol === 'http' && !perSignal) url = url.replace(/\/+$/, '') + (signal === 'profiles' ? '/v1development/profiles' : `/v1/${signal}`);
  return url;
}

/**
 * Combines the file's `otlp:` section (raw or already parsed) with the environment.
 * Throws ExportConfigError naming the key (or env var) and what is allowed.
 */
export function resolveExportConfig(fileCfg: unknown, env: Env = process.env): ResolvedExportConfig {
  const cfg = parseOtlpConfig(fileCfg);
  const sources: Record<string, string> = {};
  const G = 'OTEL_EXPORTER_OTLP_';
  const T = 'TELEGEN_OTLP_';
  // A file value that only came from a schema default is reported as 'default'.
  const fsrc = (path: string): string => {
    let o: unknown = fileCfg;
    for (const part of path.split('.')) o = o && typeof o === 'object' ? (o as Record<string, unknown>)[part] : undefined;
    return o === undefined ? 'default' : `file otlp.${path}`;
  };
  const note = <V>(key: string, p: Picked<V>): V => {
    sources[key] = p.source;
    return p.value;
  };

  // A key with only a TELEGEN_OTLP_* variable: env > file > default.
  const own = <V>(key: string, envName: string, parse: (env: Env, name: string) => V | undefined, fileValue: V | undefined, def: V): V =>
    note(key, pick<V>([[parse(env, `${T}${envName}`), `env ${T}${envName}`], [fileValue, fsrc(key)]], def));
  const int = (min: number) => (e: Env, n: string) => parseEnvInt(e, n, min);

  const retry = {
    maxAttempts: own('retry.max_attempts', 'RETRY_MAX_ATTEMPTS', int(1), cfg.retry.max_attempts, 5),
    initialBackoffMs: own('retry.initial_backoff_ms', 'RETRY_INITIAL_BACKOFF_MS', int(0), cfg.retry.initial_backoff_ms, 1000),
    maxBackoffMs: own('retry.max_backoff_ms', 'RETRY_MAX_BACKOFF_MS', int(0), cfg.retry.max_backoff_ms, 30_000),
  };
  const dropPolicy = own('drop_policy', 'DROP_POLICY', parseEnvDropPolicy, cfg.drop_policy, 'drop_newest');
  const flushIntervalMs = own('flush_interval_ms', 'FLUSH_INTERVAL_MS', int(1), cfg.flush_interval_ms, 5000);
  const maxConcurrentExports = own('max_concurrent_exports', 'MAX_CONCURRENT_EXPORTS', int(1), cfg.max_concurrent_exports, DEFAULT_MAX_CONCURRENT_EXPORTS);
  const shutdownTimeoutMs = own('shutdown_timeout_ms', 'SHUTDOWN_TIMEOUT_MS', int(0), cfg.shutdown_timeout_ms, 10_000);
  const file = {
    maxBytes: own('file.max_bytes', 'FILE_MAX_BYTES', int(1024), cfg.file.max_bytes, 100 * MB),
    keep: own('file.keep', 'FILE_KEEP', int(0), cfg.file.keep, 5),
  };

  const resolveSignal = (signal: Signal): ResolvedSignalExport => {
    const S = `${G}${up(signal)}_`;
    const sc = cfg[signal];
    const k = (key: string) => `${signal}.${key}`;
    // An OTLP key: OTEL_EXPORTER_OTLP_<SIGNAL>_X > OTEL_EXPORTER_OTLP_X > otlp.<key> > default.
    const otel = <V>(key: string, envSuffix: string, parse: (env: Env, name: string) => V | undefined, fileValue: V | undefined, def: V): V =>
      note(
        k(key),
        pick<V>(
          [
            [parse(env, `${S}${envSuffix}`), `env ${S}${envSuffix}`],
            [parse(env, `${G}${envSuffix}`), `env ${G}${envSuffix}`],
            [fileValue, fsrc(key)],
          ],
          def,
        ),
      );
    const protocol = otel('protocol', 'PROTOCOL', parseEnvProtocol, cfg.protocol, 'grpc');
    const compression = otel('compression', 'COMPRESSION', parseEnvCompression, cfg.compression, 'gzip');
    const timeoutMs = otel('timeout_ms', 'TIMEOUT', int(1), cfg.timeout_ms, 10_000);
    const caFile = otel<string | undefined>('tls.ca_file', 'CERTIFICATE', envStr, cfg.tls.ca_file, undefined);
    const certFile = otel<string | undefined>('tls.cert_file', 'CLIENT_CERTIFICATE', envStr, cfg.tls.cert_file, undefined);
    const keyFile = otel<string | undefined>('tls.key_file', 'CLIENT_KEY', envStr, cfg.tls.key_file, undefined);
    const insecureSet = otel<boolean | undefined>('tls.insecure', 'INSECURE', parseEnvBool, cfg.tls.insecure, undefined);

    // Headers merge rather than replace: generic file < generic env < per-signal env, key by key.
    const headers: Record<string, string> = { ...cfg.headers };
    const gh = envStr(env, `${G}HEADERS`);
    if (gh !== undefined) Object.assign(headers, parseOtelHeaders(gh, `${G}HEADERS`));
    const sh = envStr(env, `${S}HEADERS`);
    if (sh !== undefined) Object.assign(headers, parseOtelHeaders(sh, `${S}HEADERS`));
    sources[k('headers')] = sh !== undefined ? `env ${S}HEADERS` : gh !== undefined ? `env ${G}HEADERS` : fsrc('headers');

    const ep = pick<[string, boolean] | undefined>(
      [
        [envStr(env, `${S}ENDPOINT`) !== undefined ? [envStr(env, `${S}ENDPOINT`)!, true] : undefined, `env ${S}ENDPOINT`],
        [sc.endpoint !== undefined ? [sc.endpoint, true] : undefined, fsrc(`${signal}.endpoint`)],
        [envStr(env, `${G}ENDPOINT`) !== undefined ? [envStr(env, `${G}ENDPOINT`)!, false] : undefined, `env ${G}ENDPOINT`],
        [cfg.endpoint !== undefined ? [cfg.endpoint, false] : undefined, fsrc('endpoint')],
      ],
      undefined,
    );
    sources[k('endpoint')] = ep.source;
    const tlsFiles = caFile !== undefined || certFile !== undefined || keyFile !== undefined;
    let endpoint: string | undefined;
    let insecure = true;
    if (ep.value) {
      const [raw, perSignal] = ep.value;
      const wantsTls = insecureSet === false || (insecureSet === undefined && tlsFiles);
      endpoint = endpointUrl(raw, protocol, signal, perSignal, wantsTls);
      let parsed: URL;
      try {
        parsed = new URL(endpoint);
      } catch {
        throw new ExportConfigError(`${ep.source.replace(/^(env|file) /, '')}: "${raw}" is not a valid endpoint (host:port or http(s)://host:port[/path])`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw new ExportConfigError(`${ep.source.replace(/^(env|file) /, '')}: scheme "${parsed.protocol}" is not allowed (http, https)`);
      }
      insecure = insecureSet ?? parsed.protocol === 'http:';
    }
    if (insecureSet === undefined) sources[k('tls.insecure')] = 'derived from endpoint scheme';
    if ((certFile === undefined) !== (keyFile === undefined)) {
      throw new ExportConfigError(`${signal}: tls.cert_file and tls.key_file (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / _CLIENT_KEY) must be set together`);
    }

    // OTEL_{TRACES,METRICS,LOGS}_EXPORTER=none is the spec's way to turn a signal off.
    const exporterEnv = `OTEL_${up(signal)}_EXPORTER`;
    const exporterSel = envStr(env, exporterEnv);
    if (exporterSel !== undefined && exporterSel !== 'none' && exporterSel !== 'otlp') {
      throw new ExportConfigError(`${exporterEnv}: "${exporterSel}" is not allowed (otlp, none)`);
    }
    const enabled = note(
      k('enabled'),
      pick(
        [
          [parseEnvBool(env, `${T}${up(signal)}_ENABLED`), `env ${T}${up(signal)}_ENABLED`],
          [exporterSel === 'none' ? false : undefined, `env ${exporterEnv}`],
          [sc.enabled, fsrc(`${signal}.enabled`)],
        ],
        true,
      ),
    );
    const batchSize = own(k('batch_size'), `${up(signal)}_BATCH_SIZE`, int(1), sc.batch_size, SIGNAL_DEFAULTS[signal].batch_size);
    // The schema fills in the seed default: only a value the file really set beats the file mode's.
    const fileQueueBytes = fsrc(k('queue_bytes')) === 'default' ? undefined : sc.queue_bytes;
    const queueBytes = own(k('queue_bytes'), `${up(signal)}_QUEUE_BYTES`, int(1024), fileQueueBytes,
      (!endpoint && FILE_MODE_QUEUE_BYTES[signal]) || SIGNAL_DEFAULTS[signal].queue_bytes);

    return {
      signal,
      enabled,
      mode: endpoint ? 'otlp' : 'file',
      protocol,
      endpoint,
      headers,
      compression,
      timeoutMs,
      tls: { insecure, caFile, certFile, keyFile },
      retry,
      batchSize,
      queueBytes,
      dropPolicy,
      flushIntervalMs,
      maxConcurrentExports,
    };
  };

  return {
    traces: resolveSignal('traces'),
    metrics: resolveSignal('metrics'),
    logs: resolveSignal('logs'),
    profiles: resolveSignal('profiles'),
    shutdownTimeoutMs,
    file,
    sources,
  };
}
