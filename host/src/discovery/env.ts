// The only environment variables discovery reads from a process: the two it declares for its own
// telemetry's resource. Shared by single-process discovery and the loader's describe_process, so
// both give the same attributes with the same bounds; every other variable is skipped unread.
export const ENV_LIMITS = { serviceName: 256, resourceAttributes: 4096 } as const;

export interface OtelEnv { OTEL_SERVICE_NAME?: string; OTEL_RESOURCE_ATTRIBUTES?: string }

export function otelEnv(environ: string): OtelEnv {
  const out: OtelEnv = {};
  for (const kv of environ.split('\0')) {
    if (kv.startsWith('OTEL_SERVICE_NAME=')) out.OTEL_SERVICE_NAME = kv.slice(18, 18 + ENV_LIMITS.serviceName);
    else if (kv.startsWith('OTEL_RESOURCE_ATTRIBUTES=')) out.OTEL_RESOURCE_ATTRIBUTES = kv.slice(25, 25 + ENV_LIMITS.resourceAttributes);
  }
  return out;
}
