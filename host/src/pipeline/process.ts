// Process facts for enrichment, read once per pid from /proc and kept in a bounded cache.
import * as fs from 'fs';
import * as path from 'path';

export interface ProcessInfo {
  pid: number;
  executableName: string;
  executablePath?: string;
  commandLine?: string;
  serviceName: string;
}

const MAX = 4096;
const cache = new Map<number, ProcessInfo>();

function readEnvVar(pid: number, name: string): string | undefined {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
    for (const kv of env.split('\0')) if (kv.startsWith(`${name}=`)) return kv.slice(name.length + 1);
  } catch { /* exited or not permitted */ }
  return undefined;
}

export function processInfo(pid: number, comm?: string): ProcessInfo {
  const hit = cache.get(pid);
  if (hit) return hit;
  let executablePath: string | undefined;
  let commandLine: string | undefined;
  try { executablePath = fs.readlinkSync(`/proc/${pid}/exe`); } catch { /* exited */ }
  try { commandLine = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') || undefined; } catch { /* exited */ }
  const executableName = executablePath ? path.basename(executablePath.replace(/ \(deleted\)$/, '')) : (comm || `pid-${pid}`);
  let serviceName = readEnvVar(pid, 'OTEL_SERVICE_NAME');
  if (!serviceName) {
    const ra = readEnvVar(pid, 'OTEL_RESOURCE_ATTRIBUTES');
    const m = ra && /(?:^|,)\s*service\.name=([^,]+)/.exec(ra);
    if (m) serviceName = decodeURIComponent(m[1].trim());
  }
  const info: ProcessInfo = { pid, executableName, executablePath, commandLine, serviceName: serviceName || executableName };
  if (cache.size >= MAX) cache.delete(cache.keys().next().value as number);
  cache.set(pid, info);
  return info;
}

export function forgetProcess(pid: number): void { cache.delete(pid); }
