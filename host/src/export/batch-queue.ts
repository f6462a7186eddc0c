// Per-signal export queue: bounded in BYTES (the seed's Memory Architecture), never blocking the
// producer, batching by size or interval, retrying retryable results with exponential backoff and
// jitter, and counting every item it does not deliver by reason.
//
// Accounting identity (holds at every moment, tests rely on it):
//   received = exported + dropped_queue_full + dropped_export_failed + dropped_shutdown
//              + dropped_rejected + queue_items + in_flight_items
// Bytes held include in-flight batches: a batch waiting out a backoff still occupies memory, so a
// receiver outage fills the queue and the drop policy applies, instead of memory growing.
import type { Signal } from './config';
import type { ExportOutcome, SignalExporter } from './types';

export type DropPolicy = 'drop_newest' | 'drop_oldest';

export interface RetryPolicy {
  /** Attempts per batch, the first one included. */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export type QueueEvent =
  /** Emitted once per reason (the first drop); later drops only move the counters. */
  | { type: 'dropped'; signal: Signal; reason: DropReason; count: number; first: boolean }
  | { type: 'export_error'; signal: Signal; code: 'failure' | 'retryable' | 'rejected'; error?: Error; attempt: number; items: number };

/** rejected: the receiver accepted the request but refused these items (OTLP partial_success). */
export type DropReason = 'queue_full' | 'export_failed' | 'shutdown' | 'rejected';

export interface BatchQueueOptions<T> {
  signal: Signal;
  exporter: SignalExporter<T>;
  /** Cheap per-item size estimate in bytes (see size.ts). */
  estimateBytes: (item: T) => number;
  batchSize: number;
  maxQueueBytes: number;
  dropPolicy?: DropPolicy;
  /** Export a partial batch at least this often; 0 disables the timer. Default 5000. */
  flushIntervalMs?: number;
  /** Batches being exported (or waiting to retry) at once. Default 2 (the agent's config: DEFAULT_MAX_CONCURRENT_EXPORTS). */
  maxConcurrentExports?: number;
  retry?: RetryPolicy;
  /**
   * Watchdog per export call: an exporter that has not answered after this long is treated as
   * 'retryable' (its late answer is ignored), so a wedged transport cannot hold a slot forever.
   * Default: none (the OTLP exporters have their own timeout; the factory sets timeout + grace).
   */
  exportTimeoutMs?: number;
  /** Longest server-requested delay honoured (Retry-After / RetryInfo). Default 5 min. */
  maxRetryAfterMs?: number;
  /** [0,1) source for jitter; injectable for tests. */
  random?: () => number;
  /** First drop per reason, and every failed export call, for the caller's logger. Must not throw. */
  onEvent?: (e: QueueEvent) => void;
}

/** Plain numbers by name, for /metrics. Totals are monotonic; queue_* and in_flight_* are gauges. */
export interface ExportQueueCounters {
  received: number;
  queued: number;
  exported: number;
  dropped_queue_full: number;
  dropped_export_failed: number;
  dropped_shutdown: number;
  dropped_rejected: number;
  export_requests: number;
  export_failures: number;
  retries: number;
  /** Items sent again after an unconfirmed attempt: an upper bound on duplicates at the receiver. */
  unconfirmed_resent: number;
  queue_items: number;
  queue_bytes: number;
  in_flight_items: number;
  in_flight_batches: number;
}

export interface ShutdownReport {
  signal: Signal;
  /** True when everything queued at shutdown was settled before the deadline. */
  completed: boolean;
  exported: number;
  dropped_shutdown: number;
  dropped_export_failed: number;
}

interface Ticket {
  /** Cumulative index (see BatchQueue.taken) of the batch's first item: flush barriers use it. */
  start: number;
  items: number;
  bytes: number;
  /** Set at the shutdown deadline: counted as dropped there, its late result is ignored. */
  abandoned: boolean;
  cancelSleep?: () => void;
  /** When a sleeping retry wakes (epoch ms). */
  wakeAt?: number;
}

/** Pending slots a drained queue keeps for reuse (64 KiB per array); more were a burst's. */
const KEEP_ROOM = 8192;

const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, initialBackoffMs: 1000, maxBackoffMs: 30_000 };

export class BatchQueue<T> {
  readonly signal: Signal;
  private readonly exporter: SignalExporter<T>;
  private readonly estimate: (item: T) => number;
  private readonly batchSize: number;
  private readonly maxBytes: number;
  private readonly dropPolicy: DropPolicy;
  private readonly maxConcurrent: number;
  private readonly retry: RetryPolicy;
  private readonly maxRetryAfterMs: number;
  private readonly exportTimeoutMs: number | undefined;
  private readonly random: () => number;
  private readonly onEvent?: (e: QueueEvent) => void;

  // Pending items as a deque: arrays plus a head index, compacted now and then, so enqueue and
  // drop-oldest are O(1) amortized.
  private items: T[] = [];
  private sizes: number[] = [];
  private head = 0;
  /** End of the pending items: the arrays keep their room once drained (see compact). */
  private tail = 0;
  private pendingBytes = 0;
  private inFlightBytes = 0;
  private readonly tickets = new Set<Ticket>();

  private readonly c: ExportQueueCounters = {
    received: 0,
    queued: 0,
    exported: 0,
    dropped_queue_full: 0,
    dropped_export_failed: 0,
    dropped_shutdown: 0,
    dropped_rejected: 0,
    export_requests: 0,
    export_failures: 0,
    retries: 0,
    unconfirmed_resent: 0,
    queue_items: 0,
    queue_bytes: 0,
    in_flight_items: 0,
    in_flight_batches: 0,
  };
  private readonly reported = new Set<DropReason>();

  private timer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private draining = 0;
  private idleWaiters: Array<() => void> = [];
  /** Items ever removed from the head (batched or evicted): FIFO position for flush barriers. */
  private taken = 0;
  private flushWaiters: Array<{ target: number; resolve: () => void }> = [];
  private closing = false;
  private deadline = Infinity;
  private shutdownPromise: Promise<ShutdownReport> | undefined;

  constructor(opts: BatchQueueOptions<T>) {
    this.signal = opts.signal;
    this.exporter = opts.exporter;
    this.estimate = opts.estimateBytes;
    this.batchSize = Math.max(1, opts.batchSize);
    this.maxBytes = opts.maxQueueBytes;
    this.dropPolicy = opts.dropPolicy ?? 'drop_newest';
    this.maxConcurrent = Math.max(1, opts.maxConcurrentExports ?? 2);
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 300_000;
    this.exportTimeoutMs = opts.exportTimeoutMs;
    this.random = opts.random ?? Math.random;
    this.onEvent = opts.onEvent;
    const interval = opts.flushIntervalMs ?? 5000;
    if (interval > 0) {
      this.timer = setInterval(() => this.pump(true), interval);
      // The queue must never be what keeps the agent alive.
      this.timer.unref();
    }
  }

  /** Bytes held, queued and in flight (what the cap bounds); no allocation, unlike counters(). */
  get heldBytes(): number {
    return this.pendingBytes + this.inFlightBytes;
  }

  get capBytes(): number {
    return this.maxBytes;
  }

  get pendingCount(): number {
    return this.tail - this.head;
  }

  /**
   * Synchronous and O(1) amortized: never waits, never exports on the caller's stack.
   * Returns false when the item was dropped (queue full under drop_newest, or shutting down).
   */
  enqueue(item: T): boolean {
    this.c.received++;
    if (this.closing) {
      this.drop('shutdown', 1);
      return false;
    }
    let size: number;
    try {
      size = this.estimate(item);
    } catch {
      // A malformed item must not throw into the producer; account it at a conservative size.
      size = 4096;
    }
    if (this.pendingBytes + this.inFlightBytes + size > this.maxBytes) {
      if (this.dropPolicy === 'drop_oldest') {
        let evicted = 0;
        while (this.pendingCount > 0 && this.pendingBytes + this.inFlightBytes + size > this.maxBytes) {
          this.pendingBytes -= this.sizes[this.head];
          (this.items as unknown[])[this.head] = undefined;
          this.head++;
          evicted++;
        }
        this.taken += evicted;
        // Evictions leave holes at the head; compact here too, or a long outage under
        // drop_oldest would grow the arrays without bound.
        this.compact();
        if (evicted) this.drop('queue_full', evicted);
      }
      // Still no room (drop_newest, or only in-flight bytes left to evict): the new item goes.
      if (this.pendingBytes + this.inFlightBytes + size > this.maxBytes) {
        this.drop('queue_full', 1);
        return false;
      }
    }
    this.items[this.tail] = item;
    this.sizes[this.tail] = size;
    this.tail++;
    this.pendingBytes += size;
    this.c.queued++;
    if (this.pendingCount >= this.batchSize) this.schedulePump();
    return true;
  }

  counters(): ExportQueueCounters {
    this.c.queue_items = this.pendingCount;
    this.c.queue_bytes = this.pendingBytes + this.inFlightBytes;
    let items = 0;
    for (const t of this.tickets) items += t.items;
    this.c.in_flight_items = items;
    this.c.in_flight_batches = this.tickets.size;
    return { ...this.c };
  }

  /**
   * Exports everything queued now (partial batches too) and waits until those items are settled
   * (exported or dropped). Items enqueued meanwhile do not extend the wait.
   */
  async forceFlush(): Promise<void> {
    this.draining++;
    try {
      const target = this.taken + this.pendingCount;
      const done = new Promise<void>((resolve) => this.flushWaiters.push({ target, resolve }));
      this.pump(true);
      await done;
    } finally {
      this.draining--;
    }
    await this.exporter.forceFlush();
  }

  /**
   * Stops accepting, flushes until `deadlineMs` from now, then counts what is still queued or in
   * flight as dropped{shutdown} and shuts the exporter down. Never throws.
   */
  shutdown(deadlineMs = 10_000): Promise<ShutdownReport> {
    if (!this.shutdownPromise) this.shutdownPromise = this.doShutdown(deadlineMs);
    return this.shutdownPromise;
  }

  private async doShutdown(deadlineMs: number): Promise<ShutdownReport> {
    const before = { exported: this.c.exported, failed: this.c.dropped_export_failed, shutdown: this.c.dropped_shutdown };
    this.closing = true;
    this.deadline = Date.now() + deadlineMs;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.draining++;
    // Retries sleeping past the deadline will never be sent: give them up now.
    for (const t of this.tickets) if (t.cancelSleep && (t.wakeAt ?? 0) > this.deadline) t.cancelSleep();
    this.pump(true);
    let deadlineTimer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.whenIdle().then(() => false),
      new Promise<boolean>((resolve) => {
        deadlineTimer = setTimeout(() => resolve(true), Math.max(0, deadlineMs));
      }),
    ]);
    clearTimeout(deadlineTimer);
    if (timedOut) {
      // Whatever is left cannot be sent in time: count it once, here.
      const left = this.pendingCount;
      this.taken += left;
      this.items = [];
      this.sizes = [];
      this.head = 0;
      this.tail = 0;
      this.pendingBytes = 0;
      let abandoned = left;
      for (const t of this.tickets) {
        t.abandoned = true;
        t.cancelSleep?.();
        abandoned += t.items;
        this.inFlightBytes -= t.bytes;
      }
      this.tickets.clear();
      if (abandoned) this.drop('shutdown', abandoned);
      this.resolveIdle();
    }
    // The exporter's own shutdown waits for its in-flight requests; bound it by what is left.
    const remaining = Math.max(50, this.deadline - Date.now());
    let t2: NodeJS.Timeout | undefined;
    await Promise.race([
      this.exporter.shutdown().catch(() => undefined),
      new Promise<void>((resolve) => {
        t2 = setTimeout(resolve, remaining);
      }),
    ]);
    clearTimeout(t2);
    this.draining--;
    return {
      signal: this.signal,
      completed: !timedOut,
      exported: this.c.exported - before.exported,
      dropped_shutdown: this.c.dropped_shutdown - before.shutdown,
      dropped_export_failed: this.c.dropped_export_failed - before.failed,
    };
  }

  private drop(reason: DropReason, count: number): void {
    if (reason === 'queue_full') this.c.dropped_queue_full += count;
    else if (reason === 'export_failed') this.c.dropped_export_failed += count;
    else if (reason === 'rejected') this.c.dropped_rejected += count;
    else this.c.dropped_shutdown += count;
    // Only the first drop per reason becomes an event (DESIGN: log the first, count the rest);
    // under overload a per-item event would cost more than the item. Counters and
    // startDropReporter carry the totals.
    if (this.reported.has(reason)) return;
    this.reported.add(reason);
    this.emit({ type: 'dropped', signal: this.signal, reason, count, first: true });
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // Off the producer's stack: serialization and I/O start on a later turn.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump(false);
    });
  }

  /** Starts exports while slots are free: full batches always, partial ones when `partial`. */
  private pump(partial: boolean): void {
    const allowPartial = partial || this.draining > 0;
    while (this.tickets.size < this.maxConcurrent && this.pendingCount > 0) {
      if (this.pendingCount < this.batchSize && !allowPartial) break;
      const n = Math.min(this.batchSize, this.pendingCount);
      const batch = this.items.slice(this.head, this.head + n);
      let bytes = 0;
      for (let i = this.head; i < this.head + n; i++) {
        bytes += this.sizes[i];
        // Release the slot now: compaction may be far off, and a sent item must not stay
        // reachable from the queue beyond what the byte accounting says.
        (this.items as unknown[])[i] = undefined;
      }
      this.head += n;
      this.pendingBytes -= bytes;
      this.compact();
      const ticket: Ticket = { start: this.taken, items: n, bytes, abandoned: false };
      this.taken += n;
      this.tickets.add(ticket);
      this.inFlightBytes += bytes;
      void this.run(batch, ticket);
    }
    this.checkIdle();
  }

  private compact(): void {
    if (this.head === this.tail) {
      // Drained (every batch at a steady rate): the arrays are reused from the start, their item
      // slots already cleared. New ones per batch were regrown by ~10 copies to a batch's size
      // (~100 bytes a span at 1k req/s, 3% of the agent's allocation); a burst's are let go.
      if (this.items.length > KEEP_ROOM) { this.items = []; this.sizes = []; }
      this.head = 0;
      this.tail = 0;
    } else if (this.head > 1024 && this.head * 2 > this.tail) {
      this.items = this.items.slice(this.head, this.tail);
      this.sizes = this.sizes.slice(this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
  }

  private async callExporter(batch: T[]): Promise<ExportOutcome> {
    this.c.export_requests++;
    let call: Promise<ExportOutcome>;
    try {
      call = this.exporter.export(batch);
    } catch (e) {
      // An exporter that throws breaks its contract; treat it as a permanent failure of this batch.
      return { code: 'failure', error: e as Error };
    }
    call = call.catch((e: unknown) => ({ code: 'failure' as const, error: e as Error }));
    if (this.exportTimeoutMs === undefined) return call;
    let t: NodeJS.Timeout | undefined;
    const watchdog = new Promise<ExportOutcome>((resolve) => {
      t = setTimeout(() => resolve({ code: 'retryable', unconfirmed: true, error: new Error(`export did not answer within ${this.exportTimeoutMs} ms`) }), this.exportTimeoutMs);
    });
    try {
      return await Promise.race([call, watchdog]);
    } finally {
      clearTimeout(t);
    }
  }

  /** Delay before retry `attempt` (1-based): server's request if any, else capped 2^n with equal jitter. */
  backoffMs(attempt: number, retryAfterMs?: number): number {
    if (retryAfterMs !== undefined && retryAfterMs >= 0) return Math.min(retryAfterMs, this.maxRetryAfterMs);
    const exp = Math.min(this.retry.maxBackoffMs, this.retry.initialBackoffMs * 2 ** (attempt - 1));
    return exp / 2 + this.random() * (exp / 2);
  }

  private sleep(ms: number, ticket: Ticket): Promise<boolean> {
    ticket.wakeAt = Date.now() + ms;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        ticket.cancelSleep = undefined;
        resolve(true);
      }, ms);
      ticket.cancelSleep = () => {
        clearTimeout(t);
        ticket.cancelSleep = undefined;
        resolve(false);
      };
    });
  }

  private async run(batch: T[], ticket: Ticket): Promise<void> {
    let attempt = 0;
    try {
      for (;;) {
        attempt++;
        const outcome = await this.callExporter(batch);
        if (ticket.abandoned) return;
        if (outcome.code === 'success') {
          const rejected = outcome.rejected ?? 0;
          this.c.exported += batch.length - rejected;
          if (rejected) this.drop('rejected', rejected);
          if (outcome.error) this.emit({ type: 'export_error', signal: this.signal, code: 'rejected', error: outcome.error, attempt, items: rejected });
          return;
        }
        this.c.export_failures++;
        this.emit({ type: 'export_error', signal: this.signal, code: outcome.code, error: outcome.error, attempt, items: batch.length });
        if (outcome.code === 'failure' || attempt >= this.retry.maxAttempts) {
          this.drop('export_failed', batch.length);
          return;
        }
        const delay = this.backoffMs(attempt, outcome.retryAfterMs);
        if (Date.now() + delay > this.deadline) {
          // Shutting down and the retry would land after the deadline: give up now, not later.
          this.drop('shutdown', batch.length);
          return;
        }
        this.c.retries++;
        if (outcome.unconfirmed) this.c.unconfirmed_resent += batch.length;
        const woke = await this.sleep(delay, ticket);
        if (ticket.abandoned) return;
        if (!woke) {
          this.drop('shutdown', batch.length);
          return;
        }
      }
    } finally {
      if (!ticket.abandoned && this.tickets.delete(ticket)) this.inFlightBytes -= ticket.bytes;
      this.pump(false);
    }
  }

  private emit(e: QueueEvent): void {
    if (!this.onEvent) return;
    try {
      this.onEvent(e);
    } catch {
      /* ignore */
    }
  }

  private whenIdle(): Promise<void> {
    if (this.pendingCount === 0 && this.tickets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.pendingCount === 0 && this.tickets.size === 0) this.resolveIdle();
    else this.checkFlushWaiters();
  }

  private resolveIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
    this.checkFlushWaiters();
  }

  /** A flush barrier holds once every item before its target has left the head and settled. */
  private checkFlushWaiters(): void {
    if (this.flushWaiters.length === 0) return;
    let oldestInFlight = Infinity;
    for (const t of this.tickets) oldestInFlight = Math.min(oldestInFlight, t.start);
    const still: typeof this.flushWaiters = [];
    for (const w of this.flushWaiters) {
      if (this.taken >= w.target && oldestInFlight >= w.target) w.resolve();
      else still.push(w);
    }
    this.flushWaiters = still;
  }
}
