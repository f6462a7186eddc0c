// Listening sockets from the kernel's socket diag (else /proc/net/{tcp,tcp6,udp,udp6}), joined to processes through socket inodes
// in /proc/PID/fd, and recognised as well-known services by executable name and port.
import * as fs from 'fs';

export interface ListenSocket { transport: 'tcp' | 'udp'; address: string; port: number; inode: number }

function hexAddr(h: string): string {
  if (h.length === 8) {
    const n = parseInt(h, 16); // one little-endian 32-bit word
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
  }
  // IPv6: four 32-bit words, each in host (little-endian) order.
  const parts: string[] = [];
  for (let w = 0; w < 4; w++) {
    const word = h.slice(w * 8, w * 8 + 8);
    const bytes = word.match(/../g)!.reverse().join('');
    parts.push(bytes.slice(0, 4), bytes.slice(4, 8));
  }
  const s = parts.map((p) => p.replace(/^0+(?=.)/, '').toLowerCase()).join(':');
  if (/^0:0:0:0:0:ffff:/.test(s)) {
    const v4 = h.slice(24);
    return `::ffff:${hexAddr(v4)}`;
  }
  // Only the two common cases are compressed; others stay in full (still a valid address).
  return s === '0:0:0:0:0:0:0:0' ? '::' : s === '0:0:0:0:0:0:0:1' ? '::1' : s;
}

/** One /proc/net table: TCP in LISTEN (0A), UDP unconnected (07). */
export function parseNetTable(text: string, transport: 'tcp' | 'udp'): ListenSocket[] {
  const out: ListenSocket[] = [];
  const want = transport === 'tcp' ? '0A' : '07';
  const w0 = want.charCodeAt(0);
  const w1 = want.charCodeAt(1);
  // Under connection churn the table holds tens of thousands of rows (TIME_WAIT) and is re-read
  // every few seconds: look at each row's state column ("sl: local remote st …") first and split
  // only the rows in the wanted state.
  for (let start = text.indexOf('\n') + 1; start > 0 && start < text.length;) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const row = start;
    start = end + 1;
    const colon = text.indexOf(':', row);
    if (colon < 0 || colon >= end) continue;
    const sp1 = text.indexOf(' ', colon + 2);
    const sp2 = sp1 < 0 ? -1 : text.indexOf(' ', sp1 + 1);
    if (sp2 < 0 || sp2 + 3 > end || text.charCodeAt(sp2 + 1) !== w0 || text.charCodeAt(sp2 + 2) !== w1) continue;
    const f = text.slice(row, end).trim().split(/\s+/);
    if (f.length < 10 || f[3] !== want) continue;
    const [addr, port] = f[1].split(':');
    if (transport === 'udp' && f[2] !== '00000000:0000' && !/^0+:0000$/.test(f[2])) continue;
    out.push({ transport, address: hexAddr(addr), port: parseInt(port, 16), inode: Number(f[9]) });
  }
  return out;
}

/** An address as the kernel's socket diag gives it (network order, 4 or 16 bytes), written as
 *  parseNetTable writes the same address from /proc/net. */
export function addrFromBytes(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i] << 8) | b[i + 1]).toString(16));
  if (g[0] === '0' && g[1] === '0' && g[2] === '0' && g[3] === '0' && g[4] === '0' && g[5] === 'ffff') return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const s = g.join(':');
  return s === '0:0:0:0:0:0:0:0' ? '::' : s === '0:0:0:0:0:0:0:1' ? '::1' : s;
}

type Diag = (transport: 'tcp' | 'udp') => Array<number | Buffer> | null;
let diag: Diag | null | undefined;

/** Listening sockets over NETLINK_SOCK_DIAG (native/src/sock_diag.cc): /proc/net/tcp walks the
 *  whole established hash (262,144 buckets on a 2-vCPU VM) to list a few listeners, ~10% of the
 *  idle agent's samples; a LISTEN-only dump never touches it. null: not to be had here. */
function diagListening(transport: 'tcp' | 'udp'): ListenSocket[] | null {
  if (diag === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const n = (require('../native') as typeof import('../native')).loadNative() as unknown as { listeningSockets?: Diag };
      diag = n.listeningSockets ?? null;
    } catch {
      diag = null;
    }
  }
  const flat = diag?.(transport);
  if (!flat) return null;
  const out: ListenSocket[] = [];
  for (let i = 0; i + 3 < flat.length; i += 4) out.push({ transport, address: addrFromBytes(flat[i + 3] as Buffer), port: flat[i + 1] as number, inode: flat[i + 2] as number });
  return out;
}

export function readListening(procRoot = '/proc'): ListenSocket[] {
  const out: ListenSocket[] = [];
  for (const t of ['tcp', 'udp'] as const) {
    // The kernel's own view for this process's /proc; a proc_root elsewhere (a host's, or a
    // fixture) is read as files.
    const d = procRoot === '/proc' ? diagListening(t) : null;
    out.push(...(d ?? readNetFiles(t, procRoot)));
  }
  return out;
}

/** The same from PROC/net/{tcp,tcp6} or {udp,udp6}. */
export function readNetFiles(transport: 'tcp' | 'udp', procRoot = '/proc'): ListenSocket[] {
  const out: ListenSocket[] = [];
  for (const file of [transport, `${transport}6`]) {
    try { out.push(...parseNetTable(fs.readFileSync(`${procRoot}/net/${file}`, 'utf8'), transport)); } catch { /* no IPv6 etc. */ }
  }
  return out;
}

/** Socket inodes a process holds (readlink of each fd: "socket:[12345]"). */
export function socketInodes(pid: number, procRoot = '/proc'): number[] {
  const out: number[] = [];
  let fds: string[];
  try { fds = fs.readdirSync(`${procRoot}/${pid}/fd`); } catch { return out; }
  for (const fd of fds) {
    try {
      const l = fs.readlinkSync(`${procRoot}/${pid}/fd/${fd}`);
      if (l.startsWith('socket:[')) out.push(Number(l.slice(8, -1)));
    } catch { /* closed meanwhile */ }
  }
  return out;
}

export interface ServiceKind {
  /** Well-known name: postgresql, mysql, redis, mongodb, kafka, elasticsearch, nginx, … */
  name: string;
  /** Decoder that understands its wire protocol, when we have one. */
  decoder?: string;
  /** OTel db.system.name / messaging.system when it applies. */
  system?: string;
}

// Executable names first (they do not change with the port); ports only as a fallback for
// executables we cannot tell apart (java runs Kafka and Elasticsearch alike).
const BY_EXE: Array<[RegExp, ServiceKind]> = [
  [/^(postgres|postmaster)$/, { name: 'postgresql', decoder: 'pgsql', system: 'postgresql' }],
  [/^(mysqld|mariadbd|mariadb)$/, { name: 'mysql', system: 'mysql' }],
  [/^(redis-server|valkey-server|keydb-server)$/, { name: 'redis', decoder: 'redis', system: 'redis' }],
  [/^mongod$|^mongos$/, { name: 'mongodb', system: 'mongodb' }],
  [/^(nginx|openresty)$/, { name: 'nginx', decoder: 'http1' }],
  [/^(httpd|apache2)$/, { name: 'apache', decoder: 'http1' }],
  [/^haproxy$/, { name: 'haproxy' }],
  [/^envoy$/, { name: 'envoy', decoder: 'http2' }],
  [/^memcached$/, { name: 'memcached', system: 'memcached' }],
  [/^(named|unbound|dnsmasq|coredns|systemd-resolve)$/, { name: 'dns', decoder: 'dns' }],
  [/^(beam\.smp|rabbitmq-server)$/, { name: 'rabbitmq', system: 'rabbitmq' }],
  [/^etcd$/, { name: 'etcd', decoder: 'http2' }],
  [/^clickhouse(-server)?$/, { name: 'clickhouse', system: 'clickhouse' }],
];
const BY_PORT: Record<number, ServiceKind> = {
  5432: { name: 'postgresql', decoder: 'pgsql', system: 'postgresql' },
  3306: { name: 'mysql', system: 'mysql' },
  6379: { name: 'redis', decoder: 'redis', system: 'redis' },
  27017: { name: 'mongodb', system: 'mongodb' },
  9092: { name: 'kafka', decoder: 'kafka', system: 'kafka' },
  9200: { name: 'elasticsearch', decoder: 'http1', system: 'elasticsearch' },
  11211: { name: 'memcached', system: 'memcached' },
  53: { name: 'dns', decoder: 'dns' },
};

/** cmdline tells JVM services apart (kafka.Kafka, org.elasticsearch.bootstrap.Elasticsearch). */
export function recogniseService(exe: string, cmdline: string, port: number): ServiceKind | undefined {
  for (const [re, k] of BY_EXE) if (re.test(exe)) return k;
  if (/\bkafka\.Kafka\b|kafka-server-start/.test(cmdline)) return { name: 'kafka', decoder: 'kafka', system: 'kafka' };
  if (/org\.elasticsearch\.bootstrap|opensearch/.test(cmdline)) return { name: 'elasticsearch', decoder: 'http1', system: 'elasticsearch' };
  if (/zookeeper/.test(cmdline)) return { name: 'zookeeper' };
  return BY_PORT[port];
}
