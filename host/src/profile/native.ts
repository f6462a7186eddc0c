// Typed entry to native/src/profile_tracer.cc.
import { loadNative } from '../native';
import { RawDrain } from './model';

export interface ProfileAttachReport {
  cpus: number;
  attached: number[];
  failed: Array<{ cpu: number; error: string }>;
  progId?: number;
  stackEntries: number;
  maxDepth: number;
}

/** Order of enum tg_prof_stat (bpf/include/profile.h). */
export const PROFILE_STATS = ['samples', 'idle', 'filtered', 'collisions', 'stack_nomem', 'stack_lost', 'counts_full', 'records_lost'] as const;
export type ProfileStats = Record<(typeof PROFILE_STATS)[number], number>;

interface NativeProfileTracer {
  open(o: { frequency: number; enabled?: boolean; record?: boolean; recordBytes?: number }): ProfileAttachReport;
  drain(): RawDrain;
  drainAsync(): Promise<RawDrain>;
  setEnabled(on: boolean): void;
  setTarget(t: { pids: number[]; cgroups: bigint[] } | null): number | undefined;
  setRecording(on: boolean): void;
  collectRecords(): void;
  stats(): number[];
  close(): void;
}

export class NativeProfiler {
  private t: NativeProfileTracer;
  readonly report: ProfileAttachReport;
  private closed = false;
  /** `enabled: false` attaches with the in-kernel switch off (set the target, then enable).
   *  `recordBytes` sizes the sample-time ring (trace links; see recordRingBytes). */
  constructor(frequency: number, enabled = true, recordBytes = 0) {
    const addon = loadNative() as unknown as { ProfileTracer?: new () => NativeProfileTracer };
    if (!addon.ProfileTracer) throw new Error('native addon has no ProfileTracer: rebuild with npm run build:native');
    this.t = new addon.ProfileTracer();
    this.report = this.t.open({ frequency, enabled, record: recordBytes > 0, ...(recordBytes > 0 ? { recordBytes } : {}) });
  }
  /** Sample-time records for trace links on or off. */
  setRecording(on: boolean): void { this.t.setRecording(on); }
  /** Moves the sample-time ring's records aside (a skipped drain), so the ring never overflows
   *  while drains wait for the worker. */
  collectRecords(): void { this.t.collectRecords(); }
  drain(): RawDrain { return this.t.drain(); }
  /** The same drain on the libuv thread pool: the JS thread only builds the typed arrays. */
  drainAsync(): Promise<RawDrain> { return this.t.drainAsync(); }
  setEnabled(on: boolean): void { this.t.setEnabled(on); }
  setTarget(t: { pids: number[]; cgroups: bigint[] } | null): void { this.t.setTarget(t); }
  stats(): ProfileStats {
    const a = this.t.stats();
    const out = {} as ProfileStats;
    PROFILE_STATS.forEach((k, i) => { out[k] = a[i] ?? 0; });
    return out;
  }
  close(): void { if (!this.closed) { this.closed = true; this.t.close(); } }
}

/** The sample-time ring holds one drain interval (plus slack) of 32-byte records at `hz` on
 *  every CPU: a power of two between 64 KiB and 32 MiB. Past that, records are lost (counted)
 *  and those samples stay unlinked. */
export function recordRingBytes(cpus: number, hz: number, intervalMs: number): number {
  const want = cpus * hz * 32 * (intervalMs / 1000 + 2) * 1.25;
  let b = 64 * 1024;
  while (b < want && b < 32 * 1024 * 1024) b *= 2;
  return b;
}
