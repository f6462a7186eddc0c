// Worker side of the attach requests: the worker sees which processes open connections (the
// socket tracer's ring), and asks the loader to hook the TLS files of each new one. The loader
// decides (protocol.ts); the worker only names what it would like.
import * as net from 'net';
import { log } from '../../log';
import { tg_conn_event, tg_conn_info, tg_event_type } from '../../generated/layout';
import { SSL_FUNCS, GNUTLS_FUNCS } from '../../tracers/tls';
import { encodeFrame, Reply } from './protocol';

const rlog = log.child({ component: 'worker.requests' });

/** Request/reply over the loader socket; replies carry the request's id. */
export class LoaderClient {
  private next = 1;
  private readonly pending = new Map<number, (r: Reply) => void>();
  constructor(private readonly sock: net.Socket) {}

  request(body: Record<string, unknown>, timeoutMs = 30_000): Promise<Reply> {
    const id = this.next++;
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.pending.delete(id); resolve({ ok: false, id, error: 'failed', reason: 'no reply from the loader' }); }, timeoutMs);
      t.unref();
      this.pending.set(id, (r) => { clearTimeout(t); resolve(r); });
      this.sock.write(encodeFrame({ ...body, id }));
    });
  }

  /** A frame from the loader that answers a request; false if it is not a reply. */
  reply(msg: { id?: unknown; ok?: unknown }): boolean {
    if (typeof msg.id !== 'number' || typeof msg.ok !== 'boolean') return false;
    const done = this.pending.get(msg.id);
    this.pending.delete(msg.id);
    done?.(msg as Reply);
    return true;
  }
}

/** Pids of processes that opened a connection in this batch (TG_EV_CONN_OPEN records). */
export function connOpenPids(ring: Uint8Array, index: Uint32Array, count: number, out: Set<number>): void {
  const view = new DataView(ring.buffer, ring.byteOffset, ring.byteLength);
  for (let i = 0; i < count; i++) {
    const off = index[2 * i];
    if (index[2 * i + 1] < tg_conn_event.size) continue;
    if (view.getUint32(off + tg_conn_event.type, true) !== tg_event_type.TG_EV_CONN_OPEN) continue;
    out.add(view.getUint32(off + tg_conn_event.conn + tg_conn_info.pid, true));
  }
}

/** What the worker asks to hook in each file: the loader attaches those the file exports. */
export const TLS_SYMBOLS = [...SSL_FUNCS, ...GNUTLS_FUNCS].map(([f]) => f);
/** Pids remembered as asked for; past this the set restarts (pids are reused anyway). */
const SEEN_MAX = 65_536;

/**
 * For each process that opens a connection and was not seen before: list_targets, then one
 * attach_uprobe per file not asked for yet. Requests go one at a time: the loader rate-limits
 * sessions, and attaching blocks it for a moment per file.
 */
export class TlsRequester {
  private readonly seen = new Set<number>();
  private readonly files = new Set<string>();
  private readonly queue: number[] = [];
  private running = false;
  readonly counts = { processes: 0, attached: 0, refused: 0 };

  constructor(private readonly client: LoaderClient, private readonly selfPid = process.pid) {}

  observe(ring: Uint8Array, index: Uint32Array, count: number): void {
    const pids = new Set<number>();
    connOpenPids(ring, index, count, pids);
    for (const pid of pids) {
      if (pid === this.selfPid || this.seen.has(pid)) continue;
      if (this.seen.size >= SEEN_MAX) this.seen.clear();
      this.seen.add(pid);
      this.queue.push(pid);
    }
    if (this.queue.length && !this.running) void this.pump();
  }

  private async pump(): Promise<void> {
    this.running = true;
    try {
      for (let pid = this.queue.shift(); pid !== undefined; pid = this.queue.shift()) await this.ask(pid);
    } finally { this.running = false; }
  }

  private async ask(pid: number): Promise<void> {
    this.counts.processes++;
    const list = await this.client.request({ op: 'list_targets', tracer: 'tls', pid });
    if (!list.ok) {
      // exited already or out of policy: nothing to hook; over the rate limit: next connection
      if (/^rate limit/.test(list.reason)) this.seen.delete(pid);
      return;
    }
    // Keyed by the loader's dev:inode: a path names different files in different containers,
    // and one file (libssl, node) is shared by many processes and hooked once for all.
    for (const { path: file, key } of (list.files as Array<{ path: string; key: string }>) ?? []) {
      if (this.files.has(key)) continue;
      this.files.add(key);
      const r = await this.client.request({ op: 'attach_uprobe', tracer: 'tls', pid, library: file, symbols: TLS_SYMBOLS });
      if (!r.ok) {
        if (/^rate limit/.test(r.reason)) this.files.delete(key);
        this.counts.refused++;
        if (this.counts.refused <= 5) rlog.warn({ pid, file, error: r.error, reason: r.reason }, 'attach request refused');
      } else if (typeof r.attached === 'number' && r.attached > 0) {
        this.counts.attached++;
        rlog.info({ pid, file, uprobes: r.attached }, 'TLS uprobes attached on request');
      }
    }
  }
}
