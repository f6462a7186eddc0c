// Who is the server when the capture did not show the handshake.

/** Ports that identify a server even when they are >= 1024 (the protocols telegen decodes and common neighbours). */
const KNOWN_SERVER_PORTS: ReadonlySet<number> = new Set([
  53, 80, 443, 853, 1080, 1433, 1521, 2181, 2379, 3000, 3306, 4317, 4318, 5000, 5353, 5432, 5672, 6379, 6443,
  7000, 7001, 8000, 8008, 8080, 8081, 8088, 8443, 8888, 9000, 9042, 9090, 9092, 9093, 9200, 9300, 11211, 15672,
  26257, 27017, 50051,
]);

/**
 * Which side of a conversation is the server, judged by ports alone.
 * Returns 1 if `a` is the server, -1 if `b` is, 0 if the ports give no answer.
 * `weak` allows the last-resort rule "the smaller port is the server", which TCP uses for
 * mid-stream connections; UDP trusts the first datagram's direction over it.
 */
export function serverByPorts(a: number, b: number, weak: boolean): number {
  if (a === b) return 0;
  const ka = KNOWN_SERVER_PORTS.has(a), kb = KNOWN_SERVER_PORTS.has(b);
  if (ka !== kb) return ka ? 1 : -1;
  const pa = a < 1024, pb = b < 1024;
  if (pa !== pb) return pa ? 1 : -1;
  if (!weak) return 0;
  return a < b ? 1 : -1;
}

export function isKnownServerPort(p: number): boolean {
  return KNOWN_SERVER_PORTS.has(p);
}
