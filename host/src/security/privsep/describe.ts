// describe_process: what the worker (uid 65534, no capabilities) cannot read for enrichment and
// the loader can — the /proc/PID/exe link, the two OTEL_* variables discovery already uses, and
// the runtime classification (from /proc/PID/maps and the ELF build info). Only these fields
// leave the loader, each length-bounded: never other environment values, never file contents.
import * as fs from 'fs';
import { detectRuntime } from '../../discovery/runtime';
import { otelEnv, ENV_LIMITS, OtelEnv } from '../../discovery/env';

export { otelEnv };

export const DESCRIBE_LIMITS = { path: 4096, runtimeField: 128, ...ENV_LIMITS } as const;

export interface ProcessDescription {
  executablePath?: string;
  env: OtelEnv;
  runtime: { name: string; version?: string; description?: string; goModule?: string };
}

const clip = (s: string | undefined, max: number) => (s === undefined ? undefined : s.slice(0, max));

export function describeProcess(pid: number, procRoot = '/proc'): ProcessDescription {
  let exe: string | undefined;
  try { exe = fs.readlinkSync(`${procRoot}/${pid}/exe`).replace(/ \(deleted\)$/, ''); } catch { /* exited or kernel thread */ }
  let environ = '';
  try { environ = fs.readFileSync(`${procRoot}/${pid}/environ`, 'utf8'); } catch { /* exited */ }
  const r = detectRuntime(pid, exe, procRoot);
  const f = DESCRIBE_LIMITS.runtimeField;
  return {
    executablePath: exe && exe.length <= DESCRIBE_LIMITS.path ? exe : undefined,
    env: otelEnv(environ),
    // libs (mapped library paths) stay in the loader: the TLS requests list them separately.
    runtime: { name: clip(r.name, f)!, version: clip(r.version, f), description: clip(r.description, f), goModule: clip(r.goModule, f) },
  };
}
