// Go goroutine links (TG_EV_GO_LINK from bpf/go_tls.bpf.c) waiting for the client span they
// belong to: "the next exchange this process starts on connection C is a child of the server
// request in flight on connection S at time T". Held per client connection until a span of it
// that started after the link takes it; bounded in connections and links per connection.

/** The server request a client span belongs to: its connection and a time inside it (epoch ns). */
export interface GoParent { connId: bigint; at: bigint }

interface Link { at: bigint; parent: GoParent }

const PER_CONN = 8;

export class GoLinks {
  private readonly byConn = new Map<bigint, Link[]>();
  added = 0;
  taken = 0;

  /** `toEpochNs`: the clock the span builder uses, so link and span times compare exactly. */
  constructor(private readonly toEpochNs: (ts: bigint) => bigint, private readonly maxConns = 4096) {}

  add(connId: bigint, tsNs: bigint, parentConnId: bigint, parentTsNs: bigint): void {
    this.added++;
    let l = this.byConn.get(connId);
    if (l) this.byConn.delete(connId); // re-inserted last: the map's order is least recently used first
    else l = [];
    l.push({ at: this.toEpochNs(tsNs), parent: { connId: parentConnId, at: this.toEpochNs(parentTsNs) } });
    if (l.length > PER_CONN) l.shift();
    this.byConn.set(connId, l);
    if (this.byConn.size > this.maxConns) this.byConn.delete(this.byConn.keys().next().value as bigint);
  }

  /**
   * The parent of an exchange on `connId` that started at `startNs` (epoch): the latest link made
   * before it. That link and older ones are used up, so a later exchange on the connection made
   * by a goroutine outside any request is not given a stale parent.
   */
  take(connId: bigint, startNs: bigint): GoParent | undefined {
    const l = this.byConn.get(connId);
    if (!l) return undefined;
    let i = l.length - 1;
    while (i >= 0 && l[i].at > startNs) i--;
    if (i < 0) return undefined;
    const p = l[i].parent;
    l.splice(0, i + 1);
    if (!l.length) this.byConn.delete(connId);
    this.taken++;
    return p;
  }

  get size(): number { return this.byConn.size; }
}
