export interface Endpoint {
  addr: string; // '10.0.0.1' or '2001:db8::1'
  port: number;
}

export interface ReplayConn {
  id: number;
  transport: 'tcp' | 'udp';
  client: Endpoint;
  server: Endpoint;
  /** True when the SYN (or the first UDP datagram's direction) told us who is client; false when ports were guessed from. */
  roleKnown: boolean;
}

/**
 * Receives the reassembled streams. `bytes` may be a view into a larger read buffer and is never
 * modified afterwards; copy it if you keep it long (a view pins the whole chunk).
 */
export interface ReplaySink {
  onOpen(conn: ReplayConn, tsNs: bigint): void;
  /** In-order stream bytes (TCP) or one whole datagram (UDP). */
  onData(conn: ReplayConn, fromClient: boolean, bytes: Uint8Array, tsNs: bigint): void;
  /** `lost` bytes of this direction were never captured; the stream continues after them. */
  onGap(conn: ReplayConn, fromClient: boolean, lost: number, tsNs: bigint): void;
  /** FIN/RST both ways, or end of capture. */
  onClose(conn: ReplayConn, tsNs: bigint): void;
}

export interface ReplayOptions {
  /** Out-of-order bytes held per connection direction before the hole is declared a gap. Default 4 MiB. */
  maxBufferedBytes?: number;
}

export interface ReplayStats {
  format: 'pcap' | 'pcapng';
  /** Records read from the file (every packet, decoded or skipped). */
  packets: number;
  /** Captured bytes of those records. */
  bytes: number;
  tcpConns: number;
  udpConns: number;
  /** Stream bytes handed to onData. */
  payloadBytes: number;
  /** onGap calls and the bytes they reported. */
  gaps: number;
  gapBytes: number;
  /** TCP bytes seen more than once (retransmissions, overlaps) and delivered only once. */
  duplicateBytes: number;
  /** Packets whose payload the capture cut short (snaplen); the missing bytes are reported as gaps. */
  snaplenCut: number;
  /** IP datagrams rebuilt from fragments (their fragments that never completed: skipped['ip-fragment']). */
  ipReassembled: number;
  /** Packets (or file damage) not used, by reason: 'not-ip', 'ip-fragment', 'truncated-record', … */
  skipped: Record<string, number>;
}

/** Receives each record from a file reader. */
export type PacketFn = (linkType: number, buf: Uint8Array, tsNs: bigint) => void;
