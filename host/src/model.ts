// What the pipeline knows about a connection, from the kernel or from a capture.
export type Role = 'client' | 'server' | 'unknown';

export interface ConnMeta {
  /** Who we are on this connection: the process that called connect() is the client. */
  role: Role;
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  transport: 'tcp' | 'udp';
  pid?: number;
  tid?: number;
  comm?: string;
  cgroupId?: bigint;
  /** The kernel tracer's id of the socket (tg_conn_info.conn_id): names it in other records. */
  connId?: bigint;
  /** Replay: the capture has no "local" side; client/server are the two ends. */
  observer?: 'capture';
  /** Replay: the capture began after the handshake, so client and server were guessed from the
   *  ports; the first bytes that read as one side only may swap them (ingest/router.ts). */
  roleGuessed?: boolean;
  /** Source-clock time the connection was closed (its close event), set before the decoder's
   *  close(): an exchange still unanswered then waited until that moment (pipeline/spans.ts). */
  closedTs?: bigint;
  /** Its bytes are the plaintext a TLS library handed the TLS or Go tracer: HTTP on it is https. */
  tls?: boolean;
  /** What the span builder and the correlator derive once per connection (pipeline/spans.ts,
   *  correlate/index.ts): fields, where WeakMaps cost an entry and GC ephemeron work per connection. */
  spanCache?: unknown;
  correlateCache?: unknown;
}

/** Client and server ends of a connection, whatever side observed it. */
export function ends(c: ConnMeta): { clientAddr: string; clientPort: number; serverAddr: string; serverPort: number } {
  if (c.role === 'server') return { clientAddr: c.remoteAddr, clientPort: c.remotePort, serverAddr: c.localAddr, serverPort: c.localPort };
  return { clientAddr: c.localAddr, clientPort: c.localPort, serverAddr: c.remoteAddr, serverPort: c.remotePort };
}
