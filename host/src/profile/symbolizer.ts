// Addresses → frames. Kernel frames from /proc/kallsyms; user frames through the process's
// executable mappings to an ELF file (symbols cached by build-id, so a library shared by a
// hundred processes is read once and a binary replaced on disk is not confused with the old
// one) or to its JIT map (/tmp/perf-PID.map). An address nothing names stays visible as
// module+offset. Every cache is bounded.
import * as fs from 'fs';
import * as path from 'path';
import { Kallsyms } from './kallsyms';
import { ElfInfo, parseElf, fileOffsetToVaddr, lookupSymbol } from './elf';
import { Mapping, readMaps, findMapping } from './procmaps';
import { PerfMap, readPerfMap, lookupPerfMap } from './perfmap';
import { demangleBatch, isMangled } from './demangle';
import { Lru, GenCache } from './lru';

export type FrameKind = 'kernel' | 'native' | 'jit' | 'unknown';

/** Interned: one object per (module, function), so stacks compare and fold cheaply. */
export interface Frame {
  name: string;
  /** File path of the ELF, "[kernel]", "[jit]" or "[anon]". */
  module: string;
  kind: FrameKind;
  /** Build-id of the module when known (pprof Mapping, OTLP attributes). */
  buildId: string;
  /** True when no symbol named the address: `name` is module+0xoffset. */
  unresolved: boolean;
}

export interface SymbolizerOptions {
  /** ELF symbol tables kept, weighed by symbol count (default 4M symbols ≈ 200 MB worst case). */
  maxElfSymbols?: number;
  maxElfs?: number;
  /** Processes whose maps/JIT maps are kept (exited ones stay until evicted). */
  maxProcesses?: number;
  /** Distinct frames interned. */
  maxFrames?: number;
  kallsyms?: Kallsyms;
  perfMapDir?: string;
}

/** What is known about one process. `addrs` and `elfs` are valid for these `maps` only and are
 *  dropped with them when the maps are re-read. */
interface ProcState { maps: Mapping[]; perf?: PerfMap; perfSize: number; refreshedAt: number; addrs: GenCache<number, Frame>; elfs: Map<number, ElfInfo | null> }

function sameMaps(a: Mapping[], b: Mapping[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].start !== b[i].start || a[i].end !== b[i].end || a[i].offset !== b[i].offset || a[i].path !== b[i].path) return false;
  return true;
}

/** Addresses remembered per process (two generations of this many). */
const ADDRS_PER_PROCESS = 16_384;

export interface SymbolizerStats { elfs: number; elfSymbols: number; processes: number; frames: number; elfErrors: number; demangled: number }

export class Symbolizer {
  readonly kallsyms: Kallsyms;
  private elfByBuildId: Lru<string, ElfInfo>;
  /** path+inode+mtime → build-id (or the key itself when the file has none). */
  private fileIds = new Lru<string, string>(4096);
  private procs: GenCache<number, ProcState>;
  private kframes = new GenCache<bigint, Frame>(65_536);
  private frames: GenCache<string, Frame>;
  private pendingDemangle: Frame[] = [];
  private drainSeq = 0;
  private refreshed = new Set<number>();
  private elfErrors = 0;
  private demangled = 0;
  private readonly perfMapDir: string;

  constructor(opts: SymbolizerOptions = {}) {
    this.kallsyms = opts.kallsyms ?? new Kallsyms();
    this.elfByBuildId = new Lru(opts.maxElfs ?? 256, opts.maxElfSymbols ?? 4_000_000);
    this.procs = new GenCache(Math.ceil((opts.maxProcesses ?? 1024) / 2));
    this.frames = new GenCache(Math.ceil((opts.maxFrames ?? 200_000) / 2));
    this.perfMapDir = opts.perfMapDir ?? '/tmp';
  }

  /** Call once per drain: lets each process's maps be re-read at most once per drain. */
  beginBatch(): void { this.drainSeq++; this.refreshed.clear(); }

  /** Demangles the C++/Rust names first seen in this batch (one c++filt run). */
  endBatch(): void {
    if (!this.pendingDemangle.length) return;
    const names = [...new Set(this.pendingDemangle.map((f) => f.name))];
    const d = demangleBatch(names);
    for (const f of this.pendingDemangle) { const n = d.get(f.name); if (n && n !== f.name) { f.name = n; this.demangled++; } }
    this.pendingDemangle = [];
  }

  stats(): SymbolizerStats {
    return { elfs: this.elfByBuildId.size, elfSymbols: this.elfByBuildId.weight, processes: this.procs.size, frames: this.frames.size, elfErrors: this.elfErrors, demangled: this.demangled };
  }

  private frame(module: string, name: string, kind: FrameKind, buildId: string, unresolved: boolean): Frame {
    const key = `${module}\0${name}`;
    let f = this.frames.get(key);
    if (!f) {
      f = { name, module, kind, buildId, unresolved };
      this.frames.set(key, f);
      if (kind === 'native' && isMangled(name)) this.pendingDemangle.push(f);
    }
    return f;
  }

  kernel(addr: bigint): Frame {
    let f = this.kframes.get(addr);
    if (f) return f;
    const name = this.kallsyms.resolve(addr);
    f = name ? this.frame('[kernel]', name, 'kernel', '', false) : this.frame('[kernel]', `[kernel]+0x${addr.toString(16)}`, 'kernel', '', true);
    this.kframes.set(addr, f);
    return f;
  }

  /** Forgets a process (it exited and will not be asked about again). */
  forget(pid: number): void { this.procs.delete(pid); }

  private proc(pid: number, refresh: boolean): ProcState | undefined {
    let st = this.procs.get(pid);
    if (st && !refresh) return st;
    if (st && this.refreshed.has(pid)) return st;
    this.refreshed.add(pid);
    const maps = readMaps(pid);
    if (!maps) return st; // exited: keep what we knew
    let perf = st?.perf;
    let perfSize = st?.perfSize ?? -1;
    try {
      const size = fs.statSync(path.join(this.perfMapDir, `perf-${pid}.map`)).size;
      if (size !== perfSize) { perf = readPerfMap(pid, this.perfMapDir); perfSize = size; }
    } catch { /* no JIT map */ }
    // Same mappings (the usual case when one new JIT address forced the re-read): keep what
    // was resolved through them.
    const same = st && sameMaps(st.maps, maps);
    st = { maps, perf, perfSize, refreshedAt: this.drainSeq, addrs: same && perf === st!.perf ? st!.addrs : new GenCache(ADDRS_PER_PROCESS), elfs: same ? st!.elfs : new Map() };
    this.procs.set(pid, st);
    return st;
  }

  user(pid: number, addr: bigint): Frame {
    const a = Number(addr);
    let st = this.proc(pid, false);
    const hit = st?.addrs.get(a);
    if (hit) return hit;
    let m = st && findMapping(st.maps, a);
    // A library loaded or code JIT-compiled since we last looked: re-read once per drain.
    if (!m || (!m.path && !(st?.perf && lookupPerfMap(st.perf, a)))) {
      st = this.proc(pid, true);
      m = st && findMapping(st.maps, a);
    }
    const f = this.resolveUser(pid, st, m, a);
    // Unresolved anonymous code may be named by a JIT map written later: not remembered.
    if (st && !(f.unresolved && f.kind === 'unknown')) st.addrs.set(a, f);
    return f;
  }

  private resolveUser(pid: number, st: ProcState | undefined, m: Mapping | undefined, a: number): Frame {
    if (!m || !m.path || m.path.startsWith('[')) {
      const jit = st?.perf && lookupPerfMap(st.perf, a);
      if (jit) return this.frame('[jit]', jit, 'jit', '', false);
      const mod = m?.path || '[anon]';
      return this.frame(mod, `${mod}+0x${(m ? a - m.start : a).toString(16)}`, 'unknown', '', true);
    }
    const fileOffset = a - m.start + m.offset;
    let elf = st?.elfs.get(m.start);
    if (elf === undefined) {
      elf = this.elf(pid, m) ?? null;
      st?.elfs.set(m.start, elf);
    }
    if (elf) {
      const vaddr = fileOffsetToVaddr(elf, fileOffset);
      const sym = vaddr !== undefined ? lookupSymbol(elf.symbols, vaddr) : undefined;
      if (sym) return this.frame(m.path, sym.name, 'native', elf.buildId, false);
    }
    return this.frame(m.path, `${path.basename(m.path)}+0x${fileOffset.toString(16)}`, 'native', elf?.buildId ?? '', true);
  }

  private elf(pid: number, m: Mapping): ElfInfo | undefined {
    // A deleted or replaced file is still readable through the mapping itself.
    const file = m.deleted ? `/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}` : `/proc/${pid}/root${m.path}`;
    let st: fs.Stats;
    try { st = fs.statSync(file); } catch {
      try { st = fs.statSync(m.path); } catch { return undefined; }
    }
    const fkey = `${st.dev}:${st.ino}:${st.mtimeMs}:${st.size}`;
    const known = this.fileIds.get(fkey);
    if (known !== undefined) {
      const e = this.elfByBuildId.get(known);
      if (e) return e;
    }
    let info: ElfInfo;
    try { info = parseElf(fs.readFileSync(file)); } catch {
      try { info = parseElf(fs.readFileSync(m.path)); } catch { this.elfErrors++; return undefined; }
    }
    const id = info.buildId || fkey;
    this.fileIds.set(fkey, id);
    const cached = this.elfByBuildId.get(id);
    // One build-id is one build, but a stripped copy of it has no .symtab: whichever file was
    // read first must not hide the names a richer copy (the unstripped binary) brings later.
    if (cached && cached.symbols.names.length >= info.symbols.names.length) return cached;
    this.elfByBuildId.set(id, info, Math.max(1, info.symbols.names.length));
    return info;
  }
}
