// `telegen replay` input side: a capture file → per-connection, in-order byte streams.
// No root, no libpcap: files are read with pcap-parser (pcap) or our reader (pcapng, see files.ts),
// frames decoded in decode.ts, TCP reassembled in tcp.ts, connections tracked in flows.ts.
import { LINK_RAW, decodeFrame, newFrame } from './decode';
import { Defrag } from './frag';
import { readPcap, readPcapng, sniff } from './files';
import { FlowTable } from './flows';
import type { ReplayOptions, ReplaySink, ReplayStats } from './types';

export type { Endpoint, ReplayConn, ReplaySink, ReplayStats, ReplayOptions } from './types';
export { serverByPorts } from './ports';

const DEFAULT_MAX_BUFFERED = 4 << 20;

/**
 * Replays a pcap or pcapng file into `sink`. Throws only when the file cannot be opened or its
 * header is not a capture we read; damage after the header is counted in `skipped` and skipped.
 * Every connection still open at the end is flushed (missing bytes → onGap) and closed.
 */
export async function replayFile(path: string, sink: ReplaySink, opts?: ReplayOptions): Promise<ReplayStats> {
  const kind = await sniff(path);
  const stats: ReplayStats = {
    format: kind.kind, packets: 0, bytes: 0, tcpConns: 0, udpConns: 0, payloadBytes: 0,
    gaps: 0, gapBytes: 0, duplicateBytes: 0, snaplenCut: 0, ipReassembled: 0, skipped: {},
  };
  const max = opts?.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
  if (!(max >= 0)) throw new Error(`maxBufferedBytes must be >= 0, got ${String(opts?.maxBufferedBytes)}`);
  const table = new FlowTable(sink, stats, max);
  const frame = newFrame();
  const defrag = new Defrag();
  const onPacket = (linkType: number, buf: Uint8Array, ts: bigint): void => {
    let why = decodeFrame(linkType, buf, buf.length, frame);
    if (why === 'ip-fragment') {
      const whole = defrag.add(frame);
      if (!whole) return; // counted when the datagram completes or is given up
      why = decodeFrame(LINK_RAW, whole, whole.length, frame);
    }
    if (why !== null) {
      stats.skipped[why] = (stats.skipped[why] ?? 0) + 1;
      return;
    }
    table.packet(frame, ts);
  };
  if (kind.kind === 'pcap') await readPcap(path, kind, stats, onPacket);
  else await readPcapng(path, stats, onPacket);
  table.finish();
  defrag.finish();
  stats.ipReassembled = defrag.reassembled;
  if (defrag.lostFragments) stats.skipped['ip-fragment'] = defrag.lostFragments;
  return stats;
}
