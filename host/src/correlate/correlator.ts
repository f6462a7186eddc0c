// Joins isolated spans into traces (see docs/correlation.md for what holds exactly):
//  - header: a SERVER span whose request carried traceparent/b3 keeps that parent;
//  - socket: a SERVER span without header context whose 4-tuple (and HTTP/2 stream id) matches a
//    CLIENT span of another traced process on this node, overlapping in time, becomes that client
//    span's child;
//  - thread/time: a CLIENT span lying within a SERVER span of the same pid becomes its child —
//    exact when one candidate ran on the same thread, approximate (one candidate in flight) else;
//    with several candidates it stays a root marked telegen.correlation=ambiguous;
//  - goroutine: a CLIENT span of a Go program whose call the Go tracer tied to the server request
//    its goroutine (or an ancestor goroutine) serves becomes that request's child — before thread/time.
// Children end before their parents, so spans are held per trace until every ancestor is known
// (bounded by windowMs after their end and by maxPending), and always emitted parents first.
import { SpanContext, SpanKind } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { GoParent } from '../gotrace/links';
import { PipelineSpan } from '../pipeline/spans';
import { EmittedServers } from './emitted';

export interface CorrelateConfig {
  /** How long after a CLIENT span ends we wait for its enclosing SERVER span to finish. */
  windowMs: number;
  /** How long after a SERVER span ends we wait for the CLIENT span of the same 4-tuple. */
  socketSlackMs: number;
  /** Spans held at most; beyond, the oldest are decided with what is known. */
  maxPending: number;
}
export const DEFAULT_CORRELATE: CorrelateConfig = { windowMs: 1500, socketSlackMs: 500, maxPending: 20_000 };

/** Connection facts the span attributes do not carry. */
export interface SpanConn {
  pid?: number;
  tid?: number;
  /** "clientAddr|clientPort|serverAddr|serverPort", the same on both sides of a connection. */
  tuple?: string;
  /** Whether the client end is an address of this node (its process may be traced here). */
  peerLocal?: boolean;
  /** The kernel's socket id (ConnMeta.connId). */
  connId?: bigint;
  /** CLIENT: the server request its goroutine works for (Go tracer; gotrace/links.ts). */
  goParent?: GoParent;
}

export type Mode = 'header' | 'socket' | 'goroutine' | 'thread' | 'time' | 'ambiguous' | 'root' | 'overflow';

/** A held span. Every field is set in the constructor: the ones a literal lacked (parent, ctx,
 *  linkedServer, waiting) were added later to each node, each time into an out-of-object
 *  property store that grew. */
class Node {
  /** Until emitted: the lookup lists keep a node for seconds after, and holding the span (its
   *  attributes, times, resource refs) that long made every held span survive the young GC. */
  span: ReadableSpan | undefined;
  /** The exchange's own: conn.tid when added, and the goroutine link of a CLIENT span. */
  tid: number | undefined;
  goParent: GoParent | undefined;
  readonly kind: SpanKind;
  /** When this span's parent may be decided (see `due`), on the correlator's input clock (ms since
   *  `epochMs`, stopped while the input is paused): a small integer, where an epoch ms count is a
   *  double the node keeps boxed. */
  deadline = 0;
  /** The same deadline in wall time (ms since `epochMs`): the bound on how long a paused input
   *  may hold it (see `due`). */
  wallDeadline = 0;
  parentDecided = false;
  /** Until emitted (then every ancestor is emitted too, and no cycle can go through it): the
   *  lookup lists keep emitted nodes for seconds, and each one kept its ancestors alive. */
  parent: Node | undefined = undefined;
  mode: Mode = 'root';
  /** Final context once emitted. */
  ctx: SpanContext | undefined = undefined;
  /** Children decided onto this node before it was emitted, in that order: the first one here,
   *  the others in `waitingMore` (an array for each parent with one child was most of them). */
  waiting: Node | undefined = undefined;
  waitingMore: Node[] | undefined = undefined;
  /** Server spans linked to this client span over a socket (never its in-process parent). */
  linkedServer: Node | undefined = undefined;
  constructor(
    span: ReadableSpan,
    /** Connection facts: may be shared by every span of the connection (read, never written). */
    readonly conn: SpanConn,
    /** TimeBase.rel of the span's start and end. */
    readonly start: number,
    readonly end: number,
    /** Order of addition: names a SERVER span once only its columns in `emitted` are left. */
    readonly seq: number,
  ) {
    this.span = span;
    this.tid = conn.tid;
    this.goParent = conn.goParent;
    this.kind = span.kind;
  }
}

const PRUNE_EVERY_MS = 1000;
/** How long before a CLIENT span's start the SERVER span of its exchange may have ended (see add):
 *  plain-socket writes are stamped at syscall exit. TLS plaintext writes are stamped at their entry
 *  (bpf/tls.bpf.c) and need none; test/tls/write-stamp checks that both kinds still link. */
const READ_ORDER_SLACK_NS = 5e6;

export function ns(t: [number, number]): bigint { return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]); }

/**
 * Span times as plain numbers: ns since a base second (the first span's), exact while spans lie
 * within 104 days of it (2^53 ns) and µs-exact for centuries; a replayed capture from years ago
 * is as exact as live traffic. BigInt times allocated on every conversion and comparison.
 */
class TimeBase {
  private based = false;
  private s = 0;
  private ns = 0n;
  rel(t: [number, number]): number {
    if (!this.based) { this.based = true; this.s = t[0]; this.ns = BigInt(t[0]) * 1_000_000_000n; }
    return (t[0] - this.s) * 1e9 + t[1];
  }
  relFromNs(t: bigint): number { return Number(t - this.ns); }
  relFromMs(ms: number): number { return (ms - this.s * 1000) * 1e6; }
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** The span with its final context, parent and mode. Pipeline spans (PipelineSpan, or plain
 *  objects) are only the correlator's until it emits them: they are finished in place (a copy of
 *  every span and its attributes was ~8% of the agent's CPU, most of it garbage). Anything else
 *  is copied. */
function withContext(s: ReadableSpan, ctx: SpanContext, parent: SpanContext | undefined, mode: Mode): ReadableSpan {
  if (s instanceof PipelineSpan && !Object.isFrozen(s.attributes)) {
    (s.attributes as Record<string, unknown>)['telegen.correlation'] = mode;
    s.ctx = ctx;
    s.parentSpanContext = parent;
    return s;
  }
  if (Object.getPrototypeOf(s) !== Object.prototype || Object.isFrozen(s.attributes)) {
    return { ...s, spanContext: () => ctx, parentSpanContext: parent, attributes: { ...s.attributes, 'telegen.correlation': mode } };
  }
  const w = s as Writable<ReadableSpan>;
  w.attributes['telegen.correlation'] = mode;
  const own = s.spanContext();
  // A root keeps its own context object: no closure per span.
  if (own.traceId !== ctx.traceId || own.spanId !== ctx.spanId || own.traceFlags !== ctx.traceFlags || own.traceState !== ctx.traceState) w.spanContext = () => ctx;
  w.parentSpanContext = parent;
  return s;
}

export class Correlator {
  /** Held spans, oldest first; emitted ones (span undefined) are dropped as tick and shed walk it.
   *  A Set cost an identity hash, an insert and a delete per span: ~11% of the correlator's own
   *  time in the bench's side-by-side replay (bench/README.md, 2026-11-29). */
  private queue: Node[] = [];
  private held = 0;
  /** SERVER spans per pid not emitted when added (waiting for their socket client or for their
   *  parent), for parent and log lookup; once emitted they are in `emitted` and skipped here,
   *  and leave at the next prune. */
  private servers = new Map<number, Node[]>();
  /** Emitted SERVER spans per pid, kept max(windowMs, socketSlackMs)*4 after their end for the
   *  lookups (CLIENT spans that arrive late, log lines): in typed columns, not Node objects. */
  private emitted = new Map<number, EmittedServers>();
  private seq = 0;
  /** CLIENT spans by 4-tuple not yet claimed by a server span (pending or emitted), for socket linking. */
  private clients = new Map<string, Node[]>();
  /** SERVER spans waiting for their socket client, by 4-tuple. */
  private serversByTuple = new Map<string, Node[]>();
  readonly stats = { emitted: 0, overflow: 0, header: 0, socket: 0, goroutine: 0, thread: 0, time: 0, ambiguous: 0, root: 0 };
  private prunedAt = 0;
  private readonly time = new TimeBase();
  /** Set by the Go tracer: the goroutine link of a CLIENT span on `connId` that started at `startNs`. */
  goParent?: (connId: bigint, startNs: bigint) => GoParent | undefined;
  /** Set by the agent (KernelIngest.mayServe): false for a process that has no connection a
   *  request could have come in on. Its CLIENT spans are decided at once: held for windowMs they
   *  (and the server spans socket-linked to them) were most of what the young GC promoted. */
  mayServe?: (pid: number) => boolean;
  /** Set by the agent when it traces one process only (`tracers.socket.target_pid`): false when
   *  no client span can come for a SERVER span (its client would be another, untraced process,
   *  or the traced one, which has opened no client connection). Such a span is decided at once
   *  instead of waiting socketSlackMs for it: held that long, then in the traces store and the
   *  export batch, the span outlived two young collections. */
  peerMayBeTraced?: () => boolean;

  private readonly epochMs: number;
  /** The input clock: `now` less the time the input was paused (inputPaused). */
  private pausedMs = 0;
  private pausedAt = -1;
  /** Input clock when a span was last added, and the latest end of any span added (TimeBase.rel):
   *  how far the input has been read, whatever the wall clock says. */
  private lastAddAt = 0;
  private inputEnd = -Infinity;

  constructor(private readonly cfg: CorrelateConfig, private readonly out: (s: ReadableSpan) => void, private readonly now: () => number = Date.now) {
    this.epochMs = now();
  }

  /** Called by the agent when it stops and resumes reading the socket ring (overload gate, ingest
   *  pacing): the spans still in the ring are not late, so the time paused does not count toward
   *  any held span's deadline. */
  inputPaused(paused: boolean): void {
    const raw = this.now() - this.epochMs;
    if (paused && this.pausedAt < 0) this.pausedAt = raw;
    else if (!paused && this.pausedAt >= 0) { this.pausedMs += Math.max(0, raw - this.pausedAt); this.pausedAt = -1; }
  }

  private inputClock(): number {
    const raw = this.now() - this.epochMs;
    return raw - this.pausedMs - (this.pausedAt >= 0 ? Math.max(0, raw - this.pausedAt) : 0);
  }

  /**
   * Whether a held span whose deadline passed is decided now. The other side of its exchange (a
   * server span's client, a client span's enclosing server) is read after it, within its wait of
   * span time — not of wall time: behind a ring paused or a backlog being read, a server span
   * waited out its 500 ms before its client's record, already in the ring, was read, and both
   * stayed roots (test/tls/write-stamp "HTTPS under load", 4 of 18 runs). So: decided once the
   * input has moved that far past its end, or once nothing has been read for that long (an idle
   * input has nothing more to give), and at the latest after the lookups' own horizon. That
   * horizon also bounds wall time (tick): a gate that keeps the ring mostly paused (the contended
   * budget on a busy host) stopped the input clock for good and held spans indefinitely.
   */
  private due(n: Node, t: number): boolean {
    const wait = n.kind === SpanKind.SERVER ? this.cfg.socketSlackMs : this.cfg.windowMs;
    return this.inputEnd >= n.end + wait * 1e6 || t - this.lastAddAt >= wait || t - n.deadline >= this.keepMs();
  }

  private keepMs(): number { return Math.max(this.cfg.windowMs, this.cfg.socketSlackMs) * 4; }

  get size(): number { return this.held; }

  /** What the lookups keep: Node objects in their lists (spans not emitted yet, and emitted ones
   *  until the next prune) and emitted SERVER spans held as columns. */
  get retained(): { lookupNodes: number; emittedServers: number } {
    let lookupNodes = 0, emittedServers = 0;
    for (const m of [this.servers, this.clients, this.serversByTuple] as Array<Map<unknown, Node[]>>) for (const l of m.values()) lookupNodes += l.length;
    for (const e of this.emitted.values()) emittedServers += e.size;
    return { lookupNodes, emittedServers };
  }

  add(span: ReadableSpan, conn: SpanConn): void {
    const n = new Node(span, conn, this.time.rel(span.startTime), this.time.rel(span.endTime), this.seq++);
    const t = this.inputClock();
    this.lastAddAt = t;
    if (n.end > this.inputEnd) this.inputEnd = n.end;
    this.queue.push(n);
    this.held++;
    // Without ticks (a bare Correlator) the queue would keep every emitted node.
    if (this.queue.length >= 4096 && this.queue.length > 4 * this.held) this.compact();
    // The socket-link key: the 4-tuple, and the HTTP/2 stream id where the exchange is one stream
    // of a multiplexed connection (both ends number a stream alike). Concurrent streams overlap
    // in time: time alone paired a server span with another stream's client span.
    const sid = conn.tuple ? span.attributes['telegen.http2.stream_id'] : undefined;
    const key = conn.tuple && sid !== undefined ? `${conn.tuple}#${sid}` : conn.tuple;
    if (n.kind === SpanKind.SERVER) {
      if (span.parentSpanContext) {
        this.decide(n, undefined, span.parentSpanContext, 'header');
      } else {
        const c = key ? this.matchClient(n, key) : undefined;
        if (c) this.decide(n, c, undefined, 'socket');
        else if (key && conn.peerLocal && (this.peerMayBeTraced === undefined || this.peerMayBeTraced())) {
          n.deadline = t + this.cfg.socketSlackMs;
          n.wallDeadline = this.now() - this.epochMs + this.cfg.socketSlackMs;
          push(this.serversByTuple, key, n);
        } else this.decide(n, undefined, undefined, 'root');
      }
      // Emitted already (most): emit put it in `emitted`.
      if (!n.ctx && conn.pid !== undefined) push(this.servers, conn.pid, n);
    } else if (n.kind === SpanKind.CLIENT) {
      if (this.goParent && conn.connId !== undefined) n.goParent ??= this.goParent(conn.connId, ns(span.startTime));
      if (key) {
        // A server span of the same connection may already be waiting for us. Decided ones leave
        // the list as we pass: on a keep-alive connection it would otherwise hold every exchange
        // of the last second and make each span's lookup linear in the connection's rate.
        const ws = this.serversByTuple.get(key);
        if (ws) {
          // The first waiting server span overlapping ours; else the one that ended last within
          // READ_ORDER_SLACK_NS before our start (a plain socket's request is stamped at the
          // write's syscall exit, which a client descheduled in between can reach after the
          // server read, answered and ended its span; TLS writes are stamped at SSL_write's entry).
          let pick: Node | undefined, near: Node | undefined;
          for (let i = 0; i < ws.length && !pick; i++) {
            const s = ws[i];
            if (s.parentDecided) continue;
            if (overlaps(n, s)) pick = s;
            else if (s.end < n.start && n.start - s.end <= READ_ORDER_SLACK_NS && (!near || s.end > near.end)) near = s;
          }
          pick ??= near;
          if (pick) { n.linkedServer = pick; this.decide(pick, n, undefined, 'socket'); }
          let w = 0;
          for (let i = 0; i < ws.length; i++) if (!ws[i].parentDecided) ws[w++] = ws[i];
          // Kept when empty (prune drops it): the connection's next exchange reuses it, where a
          // delete and a new one-item array per exchange were garbage and Map shrinking.
          truncate(ws, w);
        }
        // Only a client span no server span has claimed can be claimed later.
        if (!n.linkedServer) push(this.clients, key, n);
      }
      if (conn.pid === undefined) this.decide(n, undefined, undefined, 'root');
      else if (this.mayServe && !this.mayServe(conn.pid) && !this.servers.has(conn.pid) && !this.emitted.has(conn.pid)) this.decideByTime(n);
      else { n.deadline = t + this.cfg.windowMs; n.wallDeadline = this.now() - this.epochMs + this.cfg.windowMs; }
    } else {
      this.decide(n, undefined, undefined, 'root');
    }
    if (this.held > this.cfg.maxPending) this.shed();
  }

  /** Decides every span whose deadline passed; call periodically. */
  tick(): void {
    const now = this.now(), t = this.inputClock(), raw = now - this.epochMs;
    // Deciding only emits (never adds): the queue is walked and compacted in place. Nodes emitted
    // meanwhile are skipped when reached, or dropped on the next walk if already passed.
    const q = this.queue;
    let w = 0;
    for (let i = 0; i < q.length; i++) {
      const n = q[i];
      if (!n.span) continue;
      if (!n.parentDecided && ((n.deadline <= t && this.due(n, t)) || raw - n.wallDeadline >= this.keepMs())) {
        this.decideByTime(n);
        if (!n.span) continue;
      }
      q[w++] = n;
    }
    truncate(q, w);
    // The lookup lists keep spans for seconds: pruning them once a second is plenty, and each
    // pass walks every list (one per connection), which at 10 passes a second cost more than
    // correlating itself.
    if (now - this.prunedAt >= PRUNE_EVERY_MS || now < this.prunedAt) { this.prunedAt = now; this.prune(now); }
  }

  /** Decides and emits everything (shutdown). */
  flush(): void {
    this.compact();
    for (const n of [...this.queue]) if (!n.parentDecided) this.decideByTime(n);
    // Anything still held waits on a parent that is itself held: cannot happen, but never lose spans.
    for (const n of [...this.queue]) if (!n.ctx) this.emit(n, 'overflow', undefined);
    this.compact();
  }

  /** Processes that served a request recently (log capture selects them). */
  serverPids(): Iterable<number> {
    const pids = new Set(this.emitted.keys());
    for (const p of this.servers.keys()) pids.add(p);
    return pids;
  }

  /** Trace context of the request in flight in (pid, tid) at epoch ns `ts`, for log producers. */
  logContext(pid: number, tid: number | undefined, ts: bigint): { traceId: string; spanId: string } | undefined {
    const r = this.logLink(pid, tid, ts);
    return r === 'pending' ? undefined : r;
  }

  /**
   * Like logContext, but 'pending' when the request is known and its trace is not decided yet (it
   * waits for its caller's span): the caller should ask again later rather than give up. The pick
   * is made among all known requests, decided or not, so a pending one is never mistaken for
   * "the only request in flight" being another.
   */
  logLink(pid: number, tid: number | undefined, ts: bigint): { traceId: string; spanId: string } | 'pending' | undefined {
    const list = this.servers.get(pid), done = this.emitted.get(pid);
    if (!list && !done) return undefined;
    const t = this.time.relFromNs(ts);
    // Counted over both: a Node is a request not emitted yet, a number its position in `done`.
    let nCands = 0, nSame = 0, cand: Node | number | undefined, sameOne: Node | number | undefined;
    if (list) for (let i = 0; i < list.length; i++) {
      const s = list[i];
      if (s.ctx || s.start > t || t > s.end) continue;
      nCands++; cand ??= s;
      if (tid !== undefined && s.tid === tid) { nSame++; sameOne ??= s; }
    }
    if (done) for (let i = done.first; i < done.end; i++) {
      if (done.start(i) > t || t > done.endOf(i)) continue;
      nCands++; cand ??= i;
      if (tid !== undefined && done.tidOf(i) === tid) { nSame++; sameOne ??= i; }
    }
    const pick = nSame === 1 ? sameOne : nCands === 1 ? cand : undefined;
    if (pick === undefined) return undefined;
    if (typeof pick !== 'number') return 'pending';
    const ctx = done!.ctx(pick);
    return { traceId: ctx.traceId, spanId: ctx.spanId };
  }

  private matchClient(s: Node, key: string): Node | undefined {
    const list = this.clients.get(key);
    if (!list) return undefined;
    for (let i = 0; i < list.length; i++) {
      const c = list[i];
      if (c.linkedServer || c.conn.pid === s.conn.pid || !overlaps(c, s)) continue;
      c.linkedServer = s;
      // Claimed: it leaves the list, which so holds only the connection's unanswered client spans.
      // Moved down in place (splice made an array of what it removed), kept when empty as above.
      for (let j = i + 1; j < list.length; j++) list[j - 1] = list[j];
      list.pop();
      return c;
    }
    return undefined;
  }

  private decideByTime(n: Node): void {
    if (n.kind !== SpanKind.CLIENT) { this.decide(n, undefined, undefined, 'root'); return; }
    const list = this.servers.get(n.conn.pid!), done = this.emitted.get(n.conn.pid!);
    const gp = n.goParent;
    // No server span in that process (a client-only process, most client spans at 1k req/s):
    // root, without the candidate arrays below.
    if ((!list || !list.length) && (!done || !done.size)) { this.decide(n, undefined, undefined, 'root'); return; }
    // Server spans not emitted yet are Nodes in `list` (emitted ones there are skipped: they are
    // in `done`); emitted ones are positions in `done`, never ancestors of n (emitted first).
    // Exact whatever runs concurrently: the request on that connection in flight at that time
    // (requests on one HTTP/1 connection are sequential). Not found (its span not decoded, or
    // too late): the rules below.
    if (gp) {
      const at = this.time.relFromNs(gp.at);
      // A loop, not find(): a closure here made every call allocate the function's context, Go
      // or not (~40 B for each client span decided by time).
      let live: Node | undefined;
      if (list) for (let i = 0; i < list.length && !live; i++) {
        const s = list[i];
        if (!s.ctx && s.conn.connId === gp.connId && s.start <= at && at <= s.end) live = s;
      }
      if (live) {
        if (!this.isAncestor(n, live)) { this.decide(n, live, undefined, 'goroutine'); return; }
      } else if (done) {
        for (let i = done.first; i < done.end; i++) {
          if (done.connIs(i, gp.connId) && done.start(i) <= at && at <= done.endOf(i)) { this.decideOnEmitted(n, done, i, 'goroutine'); return; }
        }
      }
    }
    // Counted first: arrays only when several candidates need the innermost one.
    const tid = n.tid;
    const linked = n.linkedServer ? n.linkedServer.seq : -1;
    let nCands = 0, nSame = 0, cand: Node | number | undefined, sameOne: Node | number | undefined;
    if (list) for (let i = 0; i < list.length; i++) {
      const s = list[i];
      if (s.ctx || s === n.linkedServer || s.start > n.start || n.end > s.end || this.isAncestor(n, s)) continue;
      nCands++; cand ??= s;
      if (tid !== undefined && s.tid === tid) { nSame++; sameOne ??= s; }
    }
    if (done) for (let i = done.first; i < done.end; i++) {
      if (done.seq(i) === linked || done.start(i) > n.start || n.end > done.endOf(i)) continue;
      nCands++; cand ??= i;
      if (tid !== undefined && done.tidOf(i) === tid) { nSame++; sameOne ??= i; }
    }
    if (nSame === 1) this.decideOn(n, done, sameOne!, 'thread');
    else if (nSame === 0 && nCands === 1) this.decideOn(n, done, cand!, 'time');
    else if (nCands === 0) this.decide(n, undefined, undefined, 'root');
    else {
      const cands: Array<Node | number> = [], same: Array<Node | number> = [];
      if (list) for (const s of list) {
        if (s.ctx || s === n.linkedServer || s.start > n.start || n.end > s.end || this.isAncestor(n, s)) continue;
        cands.push(s);
        if (tid !== undefined && s.tid === tid) same.push(s);
      }
      if (done) for (let i = done.first; i < done.end; i++) {
        if (done.seq(i) === linked || done.start(i) > n.start || n.end > done.endOf(i)) continue;
        cands.push(i);
        if (tid !== undefined && done.tidOf(i) === tid) same.push(i);
      }
      const inner = innermost(same.length ? same : cands, done);
      if (inner !== undefined) this.decideOn(n, done, inner, same.length ? 'thread' : 'time');
      else this.decide(n, undefined, undefined, 'ambiguous');
    }
  }

  /** decide() onto a server span not emitted yet (a Node) or emitted (its position in `done`). */
  private decideOn(n: Node, done: EmittedServers | undefined, parent: Node | number, mode: Mode): void {
    if (typeof parent === 'number') this.decideOnEmitted(n, done!, parent, mode);
    else this.decide(n, parent, undefined, mode);
  }

  /** decide() onto an emitted server span: its context is final, so n goes out now. */
  private decideOnEmitted(n: Node, done: EmittedServers, i: number, mode: Mode): void {
    n.parentDecided = true;
    n.parent = undefined;
    n.mode = mode;
    this.emit(n, mode, done.ctx(i));
  }

  /** Whether `a` is an ancestor of `b` already (would make a cycle). */
  private isAncestor(a: Node, b: Node): boolean {
    for (let p: Node | undefined = b, i = 0; p && i < 64; p = p.parent, i++) if (p === a) return true;
    return false;
  }

  private decide(n: Node, parent: Node | undefined, remote: SpanContext | undefined, mode: Mode): void {
    if (parent && this.isAncestor(n, parent)) { parent = undefined; mode = 'root'; }
    n.parentDecided = true;
    n.parent = parent;
    n.mode = mode;
    if (!parent) this.emit(n, mode, remote);
    else if (parent.ctx) this.emit(n, mode, parent.ctx);
    else if (!parent.waiting && !parent.waitingMore) parent.waiting = n;
    else (parent.waitingMore ??= []).push(n);
  }

  private emit(n: Node, mode: Mode, parentCtx: SpanContext | undefined): void {
    const span = n.span;
    if (!span) return; // emitted already
    n.span = undefined;
    const own = span.spanContext();
    // A pipeline root keeps its own context object ({traceId, spanId, traceFlags}): the lookup
    // lists hold `ctx` for seconds, a copy per span was one more object each.
    let ctx: SpanContext;
    if (parentCtx && span instanceof PipelineSpan && own.traceState === undefined && !Object.isFrozen(own)) {
      // A pipeline span's context is its own (spans.ts makes one per span) and nothing has read
      // it as final yet: finished in place, one object less per child span.
      const w = own as Writable<SpanContext>;
      w.traceId = parentCtx.traceId;
      w.traceFlags = parentCtx.traceFlags & 1;
      if (parentCtx.traceState) w.traceState = parentCtx.traceState;
      ctx = own;
    } else if (parentCtx) {
      // traceState set after, not spread from a conditional literal: no object literal and
      // no clone per child span.
      ctx = { traceId: parentCtx.traceId, spanId: own.spanId, traceFlags: parentCtx.traceFlags & 1 };
      if (parentCtx.traceState) ctx.traceState = parentCtx.traceState;
    } else ctx = span instanceof PipelineSpan ? own : { traceId: own.traceId, spanId: own.spanId, traceFlags: own.traceFlags };
    n.ctx = ctx;
    n.mode = mode;
    if (n.kind === SpanKind.SERVER && n.conn.pid !== undefined) {
      let e = this.emitted.get(n.conn.pid);
      if (!e) this.emitted.set(n.conn.pid, e = new EmittedServers());
      e.add(n.start, n.end, n.seq, n.tid, n.conn.connId, ctx);
    }
    this.held--;
    this.stats.emitted++;
    this.stats[mode]++;
    const parentForSpan = parentCtx ? { traceId: parentCtx.traceId, spanId: parentCtx.spanId, traceFlags: parentCtx.traceFlags, isRemote: mode === 'header' || mode === 'socket' } : undefined;
    this.out(withContext(span, ctx, parentForSpan, mode));
    n.parent = undefined;
    const w1 = n.waiting, w = n.waitingMore;
    n.waiting = n.waitingMore = undefined;
    if (w1) this.emit(w1, w1.mode, ctx);
    if (w) for (let i = 0; i < w.length; i++) this.emit(w[i], w[i].mode, ctx);
  }

  /** Over the memory bound: decide the oldest held spans now with what is known, down to 1/16
   *  under the bound. (A Set walked here skipped every entry deleted at its front that V8 had not
   *  compacted yet: one shed per added span made that ~8% of the agent's CPU.) */
  private shed(): void {
    const excess = this.held - (this.cfg.maxPending - Math.floor(this.cfg.maxPending / 16));
    let i = 0;
    // Walked and compacted in place (oldest first): a copy of the whole queue per added span made
    // a burst over maxPending quadratic.
    const q = this.queue;
    let w = 0, j = 0;
    for (; j < q.length; j++) {
      const n = q[j];
      if (!n.span) continue;
      if (i++ >= excess) break;
      if (!n.parentDecided) this.decideByTime(n);
      else if (!n.ctx) { this.detach(n); this.emit(n, 'overflow', undefined); }
      if (n.span) q[w++] = n;
    }
    for (; j < q.length; j++) q[w++] = q[j];
    truncate(q, w);
  }

  /** Drops emitted nodes from the queue. */
  private compact(): void {
    const q = this.queue;
    let w = 0;
    for (let i = 0; i < q.length; i++) if (q[i].span) q[w++] = q[i];
    truncate(q, w);
  }

  private detach(n: Node): void {
    const p = n.parent;
    if (!p) return;
    if (p.waiting === n) p.waiting = undefined;
    if (p.waitingMore) p.waitingMore = p.waitingMore.filter((x) => x !== n);
  }

  private prune(t: number): void {
    const keepNs = this.keepMs() * 1e6;
    const horizon = this.time.relFromMs(t) - keepNs;
    const drop = (m: Map<string | number, Node[]>) => {
      for (const [k, list] of m) {
        let w = 0;
        for (let i = 0; i < list.length; i++) { const n = list[i]; if (n.end >= horizon || !n.ctx) list[w++] = n; }
        if (w === 0) m.delete(k); else truncate(list, w);
      }
    };
    // Emitted server spans are in `emitted` from their emission on.
    for (const [k, list] of this.servers) {
      let w = 0;
      for (let i = 0; i < list.length; i++) if (!list[i].ctx) list[w++] = list[i];
      if (w === 0) this.servers.delete(k); else truncate(list, w);
    }
    for (const [k, e] of this.emitted) {
      e.prune(horizon);
      if (!e.size) this.emitted.delete(k);
    }
    drop(this.clients as Map<string | number, Node[]>);
    for (const [k, list] of this.serversByTuple) {
      let w = 0;
      for (let i = 0; i < list.length; i++) if (!list[i].parentDecided) list[w++] = list[i];
      if (w === 0) this.serversByTuple.delete(k); else truncate(list, w);
    }
  }
}

/** Cuts `list` to its first `w` entries. Setting the length gives the array's backing store back
 *  (all of it at 0), and the next pushes allocate a new one and copy: ~150 B for every exchange
 *  of a connection's one-item list, and the queue regrown every tick. pop() keeps the store; a
 *  long tail (a burst's) is still given back. */
function truncate<T>(list: T[], w: number): void {
  if (list.length - w > 1024) list.length = w;
  else while (list.length > w) list.pop();
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v); else m.set(k, [v]);
}

/** Client and server views of one exchange overlap (the server's lies within the client's, give or take clock reading order). */
function overlaps(a: Node, b: Node): boolean { return a.start <= b.end && b.start <= a.end; }

/**
 * Among enclosing candidates, one that every other encloses (a strict nesting chain) is the
 * innermost; concurrent, non-nested requests have none — that is the ambiguous case.
 */
function innermost(cands: Array<Node | number>, done: EmittedServers | undefined): Node | number | undefined {
  const start = (c: Node | number) => typeof c === 'number' ? done!.start(c) : c.start;
  const end = (c: Node | number) => typeof c === 'number' ? done!.endOf(c) : c.end;
  let best: Node | number | undefined;
  for (const c of cands) if (best === undefined || start(c) >= start(best)) best = c;
  if (best === undefined) return undefined;
  for (const c of cands) if (c !== best && !(start(c) <= start(best) && end(best) <= end(c))) return undefined;
  return best;
}
