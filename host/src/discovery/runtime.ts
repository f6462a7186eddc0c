// Which language runtime a process runs, and its version where the files say it cheaply:
// executable name, mapped shared libraries (/proc/PID/maps) and, for Go, the ELF build info.
import * as fs from 'fs';
import * as path from 'path';
import { readGoBuildInfo } from './elf';

export interface RuntimeInfo {
  /** OTel process.runtime.name-style: nodejs, cpython, java, go, dotnet, ruby, php, native. */
  name: string;
  version?: string;
  description?: string;
  /** Go: main module path. */
  goModule?: string;
  /** Shared libraries of interest (TLS, HTTP/2) for uprobe selection. */
  libs?: Record<string, string>;
}

const LIBS: Array<[string, RegExp]> = [
  ['libssl', /\/libssl\.so[.\d]*$/], ['libnghttp2', /\/libnghttp2\.so[.\d]*$/], ['libgnutls', /\/libgnutls\.so[.\d]*$/],
];

/** Paths of mapped files (deduplicated) from maps text. */
export function mappedFiles(maps: string): string[] {
  const out = new Set<string>();
  for (const line of maps.split('\n')) {
    const i = line.indexOf('/');
    if (i > 0) out.add(line.slice(i).replace(/ \(deleted\)$/, ''));
  }
  return [...out];
}

function readText(p: string): string | undefined { try { return fs.readFileSync(p, 'utf8'); } catch { return undefined; } }

// Go build info costs a few reads; executables are shared by many pids, so cache by path+mtime.
const goCache = new Map<string, ReturnType<typeof readGoBuildInfo> | null>();
function goInfo(exe: string, procExe: string): ReturnType<typeof readGoBuildInfo> {
  let key = exe;
  try { const st = fs.statSync(procExe); key = `${exe}\0${st.dev}:${st.ino}:${st.mtimeMs}`; } catch { /* gone */ }
  if (goCache.has(key)) return goCache.get(key) ?? undefined;
  const info = readGoBuildInfo(procExe);
  if (goCache.size > 1024) goCache.clear();
  goCache.set(key, info ?? null);
  return info;
}

/** Pure classification from the executable path and mapped files (fixtures use this). */
export function classifyRuntime(exe: string, files: string[]): RuntimeInfo | undefined {
  const base = path.basename(exe);
  const find = (re: RegExp) => files.find((f) => re.test(f));
  let m: RegExpExecArray | null;
  const jvm = find(/\/libjvm\.so$/);
  if (jvm || base === 'java') {
    // JDK layout: <home>/lib/server/libjvm.so and <home>/release with JAVA_VERSION="17.0.9".
    let version: string | undefined;
    if (jvm) {
      const rel = readText(path.resolve(path.dirname(jvm), '..', '..', 'release'));
      version = rel ? /JAVA_VERSION="([^"]+)"/.exec(rel)?.[1] : undefined;
    }
    return { name: 'java', version };
  }
  const clr = find(/\/libcoreclr\.so$/);
  if (clr || base === 'dotnet') {
    const v = clr ? /Microsoft\.NETCore\.App\/([^/]+)\//.exec(clr)?.[1] : undefined;
    return { name: 'dotnet', version: v };
  }
  if ((m = /^python(\d+(?:\.\d+)?)?$/.exec(base)) || find(/\/libpython\d/)) {
    const lib = find(/\/libpython(\d+\.\d+)/);
    const v = (m && m[1]) || (lib ? /libpython(\d+\.\d+)/.exec(lib)?.[1] : undefined);
    return { name: 'cpython', version: v };
  }
  if (base === 'node' || base === 'nodejs' || find(/\/libnode\.so/)) {
    const lib = find(/\/libnode\.so\.(\d+)/);
    return { name: 'nodejs', version: lib ? /libnode\.so\.(\d+)/.exec(lib)?.[1] : undefined };
  }
  if ((m = /^ruby(\d+\.\d+)?$/.exec(base)) || find(/\/libruby[.-]/)) {
    const lib = find(/\/libruby[.-][\d.]*so[.\d]*|\/libruby\.so\.\d/);
    const v = (m && m[1]) || (lib ? /(\d+\.\d+(?:\.\d+)?)/.exec(path.basename(lib))?.[1] : undefined);
    return { name: 'ruby', version: v };
  }
  if ((m = /^php(?:-fpm|-cgi)?(\d+\.\d+)?$/.exec(base))) return { name: 'php', version: m[1] };
  return undefined;
}

export function detectRuntime(pid: number, exe: string | undefined, procRoot = '/proc'): RuntimeInfo {
  const files = mappedFiles(readText(`${procRoot}/${pid}/maps`) ?? '');
  const libs: Record<string, string> = {};
  for (const [name, re] of LIBS) { const f = files.find((x) => re.test(x)); if (f) libs[name] = f; }
  const r = (exe && classifyRuntime(exe, files)) || undefined;
  let out: RuntimeInfo;
  if (r) out = r;
  else {
    const go = exe ? goInfo(exe, `${procRoot}/${pid}/exe`) : undefined;
    out = go ? { name: 'go', version: go.goVersion.replace(/^go/, ''), description: go.goVersion, goModule: go.modulePath } : { name: 'native' };
  }
  if (Object.keys(libs).length) out.libs = libs;
  return out;
}
