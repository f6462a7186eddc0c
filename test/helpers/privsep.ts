// Privilege separation test helpers: /proc/PID/status as a record, and a session on the
// loader's Unix socket spoken by hand (the hello it sends first, then one reply per request).
import * as fs from 'fs';
import * as net from 'net';
import { waitFor } from './agent';

export function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = l.indexOf(':');
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1).trim();
  }
  return out;
}

export function frame(body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length);
  return Buffer.concat([h, b]);
}

/** A connection to the loader: the hello it sends first, then one reply per request. */
export async function loaderSession(sock: string) {
  const s = net.connect(sock);
  let buf = Buffer.alloc(0);
  const frames: unknown[] = [];
  let closed = false;
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      frames.push(JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString()));
      buf = buf.subarray(4 + buf.readUInt32BE(0));
    }
  });
  s.on('close', () => { closed = true; });
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  const next = async () => waitFor(() => frames.shift() as Record<string, unknown> | undefined, 15_000, 20);
  return {
    hello: await next(),
    async ask(body: string | Buffer | object) {
      s.write(frame(Buffer.isBuffer(body) || typeof body === 'string' ? body : JSON.stringify(body)));
      return next();
    },
    closed: () => closed,
    end: () => s.destroy(),
  };
}

