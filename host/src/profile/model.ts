// One drain interval turned into symbolized samples, and the folded-stack / tree views the
// API and page use.
import { Frame, Symbolizer } from './symbolizer';
import type { KeyLinks } from './links';

/** What ProfileTracer.drain() returns (native/src/profile_tracer.cc). */
export interface RawDrain {
  n: number;
  keys: Int32Array;
  counts: Float64Array;
  comms: string[];
  stackIds: Int32Array;
  stackOffsets: Uint32Array;
  frames: BigUint64Array;
  /** Sample-time records (recording on): the index of each one's key, and its kernel time. */
  recKeys?: Uint32Array;
  recTimes?: BigUint64Array;
}

export interface TraceLink { traceId: string; spanId: string }

export interface ProfileSample {
  pid: number;
  tid: number;
  comm: string;
  count: number;
  /** Root first (outermost caller) … leaf last; kernel frames (if any) after user frames. */
  stack: Frame[];
  link?: TraceLink;
}

export interface IntervalProfile {
  startMs: number;
  endMs: number;
  /** Sampling period in nanoseconds (1e9 / frequency). */
  periodNs: number;
  samples: ProfileSample[];
  /** Stacks the kernel named by id but no longer held (a count taken between drain and delete). */
  missingStacks: number;
}

export const LOST_FRAME: Frame = { name: '[lost stack]', module: '[unknown]', kind: 'unknown', buildId: '', unresolved: true };

/**
 * Resolves a drain (optionally pausing every `pause.every` keys). A key whose count `links`
 * splits by trace link becomes one sample per link plus one for the unlinked rest. `previous` maps stack ids of the last drain to their addresses: ids the
 * native side freed right after a sample of this interval named them still resolve.
 */
export async function symbolizeDrain(d: RawDrain, sym: Symbolizer, previous: Map<number, BigUint64Array>, links?: KeyLinks, pause?: { every: number; wait: () => Promise<void> }): Promise<{ samples: ProfileSample[]; stacks: Map<number, BigUint64Array>; missing: number }> {
  const stacks = new Map<number, BigUint64Array>();
  for (let i = 0; i < d.stackIds.length; i++) {
    const a = d.stackOffsets[i];
    const b = d.stackOffsets[i + 1];
    if (b > a) stacks.set(d.stackIds[i], d.frames.subarray(a, b));
  }
  const addrs = (id: number): BigUint64Array | undefined => (id < 0 ? undefined : stacks.get(id) ?? previous.get(id));
  sym.beginBatch();
  const samples: ProfileSample[] = [];
  let missing = 0;
  for (let i = 0; i < d.n; i++) {
    // Lets the worker answer other requests (re-target lookups) inside a long first interval.
    if (pause && i > 0 && i % pause.every === 0) await pause.wait();
    const pid = d.keys[i * 4];
    const tid = d.keys[i * 4 + 1];
    const uid = d.keys[i * 4 + 2];
    const kid = d.keys[i * 4 + 3];
    const stack: Frame[] = [];
    const u = addrs(uid);
    if (u) for (let j = u.length - 1; j >= 0; j--) stack.push(sym.user(pid, u[j]));
    else if (uid >= 0 || uid === -17 || uid === -12) { stack.push(LOST_FRAME); if (uid >= 0) missing++; }
    const k = addrs(kid);
    if (k) for (let j = k.length - 1; j >= 0; j--) stack.push(sym.kernel(k[j]));
    else if (kid >= 0) missing++;
    let rest = d.counts[i];
    for (const [link, n] of links?.[i] ?? []) { samples.push({ pid, tid, comm: d.comms[i], count: n, stack, link }); rest -= n; }
    if (rest > 0) samples.push({ pid, tid, comm: d.comms[i], count: rest, stack });
  }
  sym.endBatch();
  return { samples, stacks, missing };
}

/** "root;caller;leaf" as flamegraph.pl / speedscope read it; the process name is the root. */
export function foldedLine(s: ProfileSample): string {
  const parts = [s.comm || `pid ${s.pid}`];
  for (const f of s.stack) parts.push(f.name.replace(/;/g, ':'));
  return parts.join(';');
}

export interface FlameNode { name: string; value: number; children: FlameNode[] }

/** Folded counts → a tree the page draws (children sorted by name for a stable layout). */
export function foldedToTree(folded: Map<string, number>, rootName = 'all'): FlameNode {
  const root: FlameNode = { name: rootName, value: 0, children: [] };
  const index = new Map<FlameNode, Map<string, FlameNode>>();
  for (const [line, count] of folded) {
    root.value += count;
    let node = root;
    for (const name of line.split(';')) {
      let kids = index.get(node);
      if (!kids) { kids = new Map(); index.set(node, kids); }
      let c = kids.get(name);
      if (!c) { c = { name, value: 0, children: [] }; kids.set(name, c); node.children.push(c); }
      c.value += count;
      node = c;
    }
  }
  const sort = (n: FlameNode) => { n.children.sort((a, b) => (a.name < b.name ? -1 : 1)); n.children.forEach(sort); };
  sort(root);
  return root;
}

/** Share of samples whose stack contains a frame with this name (inclusive time). */
export function inclusiveShare(samples: ProfileSample[], name: string | RegExp): number {
  let hit = 0;
  let all = 0;
  for (const s of samples) {
    all += s.count;
    if (s.stack.some((f) => (typeof name === 'string' ? f.name === name : name.test(f.name)))) hit += s.count;
  }
  return all ? hit / all : 0;
}
