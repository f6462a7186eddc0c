// Struct offsets the goroutine-aware net/http probes follow (bpf/go_tls.bpf.c, "Goroutine-aware
// requests"), keyed by Go version like the crypto/tls row in offsets.ts and generated the same
// way: scripts/go-offsets/main.go prints them as its "http" object from its own DWARF.
import { GoOffsets, OffsetRow, rowFor } from './offsets';

export interface GoHttpOffsets {
  /** net/http.response.conn (*http.conn). */
  responseConn: number;
  /** net/http.conn.server (*http.Server): the probe checks it against serverHandler.srv. */
  connServer: number;
  /** net/http.conn.rwc (net.Conn): offset of its data word. */
  connRwcData: number;
  /** net/http.conn.tlsState: non-nil when rwc is a *tls.Conn. */
  connTlsState: number;
  /** net/http.persistConn.conn (net.Conn): offset of its data word. */
  persistConnConnData: number;
  /** net/http.persistConn.tlsState: non-nil when conn is a *tls.Conn. */
  persistConnTlsState: number;
}

export const GO_HTTP_OFFSETS: OffsetRow<GoHttpOffsets>[] = [
  // Generated from go1.19.8 (Debian 12). The fields followed lead their structs or sit behind
  // fields that did not change in 1.17–1.22 by the release notes; only 1.19 was measured here.
  // A wrong server-side row fails the probe's own check (response.conn.server == the Server).
  {
    from: [1, 17], to: [1, 22], generatedFrom: 'go1.19.8',
    offsets: { responseConn: 0, connServer: 0, connRwcData: 24, connTlsState: 48, persistConnConnData: 88, persistConnTlsState: 96 },
  },
];

export function httpOffsetsFor(version: string): GoHttpOffsets | undefined {
  return rowFor(GO_HTTP_OFFSETS, version);
}

/**
 * The cookie of every net/http and goroutine probe: eight 6-bit words, each an offset in 8-byte
 * units (GH_* in bpf/go_tls.bpf.c). `holder` picks which struct's conn/tlsState the probe reads
 * (http.conn for the server, persistConn for the client). Undefined when an offset does not fit
 * (unaligned or ≥ 512): the binary then gets no goroutine probes rather than wrong ones.
 */
export function packHttpOffsets(o: GoOffsets, h: GoHttpOffsets, holder: 'server' | 'client'): number | undefined {
  const words = [
    o.tlsConnConnData, o.tcpConnFd, o.netFdSysfd, o.gGoid, h.responseConn, h.connServer,
    holder === 'server' ? h.connRwcData : h.persistConnConnData,
    holder === 'server' ? h.connTlsState : h.persistConnTlsState,
  ];
  let cookie = 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w % 8 !== 0 || w < 0 || w >= 512) return undefined;
    cookie += (w / 8) * 2 ** (6 * i);
  }
  return cookie;
}
