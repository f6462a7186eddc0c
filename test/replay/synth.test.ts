// Hand-built captures with exact expectations: every reassembly rule, link type and file format.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { replayFile, ReplayOptions } from '../../host/src/replay';
import { ACK, Conv, FIN, LINKTYPE, Link, PSH, RST, SYN, fragments, frame, ip, tcpIp, tmpDir, tmpFile, udpIp, udpL4, writePcap, writePcapng } from './build';
import { CollectSink, haveTshark } from './oracle';
import { compareWithTshark } from './compare';

after(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

const C = { addr: '10.0.0.1', port: 40000 };
const S = { addr: '10.0.0.2', port: 8080 };

async function run(file: string, opts?: ReplayOptions) {
  const sink = new CollectSink();
  const stats = await replayFile(file, sink, opts);
  return { sink, stats };
}
/** Events without timestamps, for compact expectations. */
const ev = (e: string[]) => e.map((x) => x.replace(/@\d+$/, ''));

/** Handshake with client ISN `ci`, server ISN `si`. */
function handshake(cv: Conv, ci: number, si: number): void {
  cv.tcp(true, ci, SYN);
  cv.tcp(false, si, SYN, '', (ci + 1) >>> 0);
  cv.tcp(true, (ci + 1) >>> 0, 0, '', (si + 1) >>> 0);
}

test('in-order exchange with handshake and FINs: roles known, bytes and timestamps exact', async () => {
  const cv = new Conv(C, S);
  handshake(cv, 1000, 5000);
  const t1 = cv.tcp(true, 1001, PSH, 'GET / HTTP/1.1\r\n\r\n', 5001);
  const t2 = cv.tcp(false, 5001, PSH, 'HTTP/1.1 200 OK\r\n\r\n', 1019);
  cv.tcp(true, 1019, FIN, '', 5020);
  const tEnd = cv.tcp(false, 5020, FIN, '', 1020);
  cv.tcp(true, 1020, 0, '', 5021); // final ACK: after close, ignored
  const { sink, stats } = await run(cv.write('basic.pcap'));
  assert.equal(sink.conns.length, 1);
  const c = sink.conns[0];
  assert.deepEqual(c.conn, { id: 1, transport: 'tcp', client: C, server: S, roleKnown: true });
  assert.deepEqual(c.events, [`C:GET / HTTP/1.1\r\n\r\n@${t1}`, `S:HTTP/1.1 200 OK\r\n\r\n@${t2}`]);
  assert.equal(c.closeTs, tEnd);
  assert.equal(c.closes, 1);
  assert.equal(stats.packets, 8);
  assert.equal(stats.tcpConns, 1);
  assert.equal(stats.payloadBytes, 37);
  assert.equal(stats.gaps, 0);
  assert.equal(stats.format, 'pcap');
});

test('out-of-order segments are buffered and delivered in order with the completing timestamp', async () => {
  const cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 8, 0, 'world', 101);
  cv.tcp(true, 13, 0, '!', 101);
  const tFill = cv.tcp(true, 2, 0, 'hello ', 101);
  const { sink } = await run(cv.write('ooo.pcap'));
  assert.deepEqual(sink.conns[0].events, [`C:hello @${tFill}`, `C:world@${tFill}`, `C:!@${tFill}`]);
});

// Policy (tshark's follow does the same): a delivered byte is never replaced; among copies still
// waiting, the segment that makes the bytes contiguous wins.
test('retransmissions and overlaps deliver each byte once', async () => {
  const cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, 0, 'abcdef', 101);
  cv.tcp(true, 2, 0, 'abcdef', 101); // exact retransmission
  cv.tcp(true, 5, 0, 'DEFghi', 101); // overlaps 3 delivered bytes, adds 3
  cv.tcp(true, 14, 0, 'mn', 101); // out of order
  cv.tcp(true, 14, 0, 'mn', 101); // duplicate of a waiting segment
  cv.tcp(true, 11, 0, 'jklMN', 101); // fills the hole and overlaps the waiting one
  const { sink, stats } = await run(cv.write('retrans.pcap'));
  assert.equal(sink.stream(sink.conns[0], true).toString(), 'abcdefghijklMN');
  assert.equal(sink.conns[0].gaps.length, 0);
  assert.equal(stats.duplicateBytes, 6 + 3 + 2 + 2);
});

test('sequence numbers wrap around 2^32', async () => {
  const cv = new Conv(C, S);
  const isn = 0xfffffff0;
  handshake(cv, isn, 0xffffffff);
  const a = 'A'.repeat(10), b = 'B'.repeat(10), d = 'D'.repeat(10);
  cv.tcp(true, (isn + 1) >>> 0, 0, a, 0);
  cv.tcp(true, (isn + 21) >>> 0, 0, d, 0); // after the wrap, out of order
  cv.tcp(true, (isn + 11) >>> 0, 0, b, 0); // straddles 2^32
  cv.tcp(true, (isn + 11) >>> 0, 0, b, 0); // retransmitted across the wrap
  cv.tcp(false, 0, 0, 'server after wrap'); // server ISN 0xffffffff: first data byte at seq 0
  const { sink } = await run(cv.write('wrap.pcap'));
  assert.equal(sink.stream(sink.conns[0], true).toString(), a + b + d);
  assert.equal(sink.stream(sink.conns[0], false).toString(), 'server after wrap');
  assert.equal(sink.conns[0].gaps.length, 0);
});

test('mid-stream start: roles from ports (server speaks first), roleKnown=false', async () => {
  const cv = new Conv({ addr: '10.0.0.1', port: 51000 }, { addr: '10.0.0.2', port: 5432 });
  cv.tcp(false, 7000, PSH, 'server-bytes', 300);
  cv.tcp(true, 300, PSH, 'client-bytes', 7012);
  const { sink } = await run(cv.write('mid.pcap'));
  const c = sink.conns[0];
  assert.equal(c.conn.roleKnown, false);
  assert.deepEqual(c.conn.client, { addr: '10.0.0.1', port: 51000 });
  assert.deepEqual(c.conn.server, { addr: '10.0.0.2', port: 5432 });
  assert.deepEqual(ev(c.events), ['S:server-bytes', 'C:client-bytes']);
});

test('mid-stream start: the peer\'s first ACK reveals bytes sent before the capture began', async () => {
  const cv = new Conv({ addr: '10.0.0.1', port: 51000 }, { addr: '10.0.0.2', port: 9092 });
  cv.tcp(false, 7000, PSH, 'resp', 100); // server acks client seq 100
  cv.tcp(true, 144, PSH, 'req', 7004); // client data resumes at 144: 44 bytes never captured
  const { sink } = await run(cv.write('mid-gap.pcap'));
  assert.deepEqual(ev(sink.conns[0].events), ['S:resp', 'C:gap44', 'C:req']);
});

test('mid-stream heuristics: smaller port serves when neither is well known; SYN-ACK first', async () => {
  const cv = new Conv({ addr: '10.0.0.1', port: 45000 }, { addr: '10.0.0.2', port: 36333 });
  cv.tcp(true, 1, PSH, 'x', 1);
  const cv2 = new Conv({ addr: '10.0.0.3', port: 45001 }, { addr: '10.0.0.4', port: 45002 });
  cv2.tcp(false, 10, SYN, '', 5); // SYN-ACK from the "server" with the SYN not captured
  const f1 = cv.write('heur1.pcap'), f2 = cv2.write('heur2.pcap');
  const a = (await run(f1)).sink.conns[0].conn, b = (await run(f2)).sink.conns[0].conn;
  assert.equal(a.server.port, 36333);
  assert.equal(a.roleKnown, false);
  assert.equal(b.client.port, 45001);
  assert.equal(b.server.port, 45002);
  assert.equal(b.roleKnown, true);
});

test('a segment that never arrives: gap when later data forces it (ACK), at close, or past the buffer bound', async () => {
  // (1) the server ACKs beyond the hole: those bytes will never be retransmitted
  let cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, 0, 'aaaa', 101);
  cv.tcp(true, 10, 0, 'cccc', 101); // bytes 6..9 missing
  const tAck = cv.tcp(false, 101, 0, '', 14);
  let { sink, stats } = await run(cv.write('gap-ack.pcap'));
  assert.deepEqual(sink.conns[0].events.slice(0, 3), [`C:aaaa@${sink.conns[0].events[0].split('@')[1]}`, `C:gap4@${tAck}`, `C:cccc@${tAck}`]);
  assert.equal(stats.gaps, 1);
  assert.equal(stats.gapBytes, 4);
  // (1b) one ACK past two holes reports both
  cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, 0, 'aa', 101);
  cv.tcp(true, 6, 0, 'bb', 101); // 4..5 missing
  cv.tcp(true, 11, 0, 'cc', 101); // 8..10 missing
  cv.tcp(false, 101, 0, '', 13);
  cv.tcp(true, 13, 0, 'dd', 101);
  ({ sink } = await run(cv.write('gap-ack2.pcap')));
  assert.deepEqual(ev(sink.conns[0].events), ['C:aa', 'C:gap2', 'C:bb', 'C:gap3', 'C:cc', 'C:dd']);
  // (2) no ACK: reported when the capture ends, in order
  cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, 0, 'aaaa', 101);
  cv.tcp(true, 10, 0, 'cccc', 101);
  ({ sink } = await run(cv.write('gap-end.pcap')));
  assert.deepEqual(ev(sink.conns[0].events), ['C:aaaa', 'C:gap4', 'C:cccc']);
  // (3) FIN after a hole, both sides close: the missing tail is a gap at close
  cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, 0, 'aa', 101);
  cv.tcp(true, 9, FIN, '', 101); // 5 bytes (4..8) missing before the FIN
  cv.tcp(false, 101, FIN, '', 10);
  const tRst = cv.tcp(false, 102, RST, '', 10);
  ({ sink } = await run(cv.write('gap-fin.pcap')));
  assert.deepEqual(ev(sink.conns[0].events), ['C:aa', 'C:gap5']);
  assert.equal(sink.conns[0].closeTs, tRst);
  // (4) out-of-order bytes beyond maxBufferedBytes force the gap early
  cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, 0, 'aa', 101);
  cv.tcp(true, 10, 0, '1234', 101);
  cv.tcp(true, 14, 0, '5678', 101); // 8 bytes waiting > bound 6
  cv.tcp(true, 4, 0, 'lateeeee', 101); // too late now: already reported lost
  ({ sink, stats } = await run(cv.write('gap-bound.pcap'), { maxBufferedBytes: 6 }));
  assert.deepEqual(ev(sink.conns[0].events), ['C:aa', 'C:gap6', 'C:1234', 'C:5678']);
  assert.equal(stats.duplicateBytes, 8);
});

test('RST closes at once; a new SYN on the same 4-tuple is a new connection', async () => {
  const cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, PSH, 'one', 101);
  const tRst = cv.tcp(false, 101, RST, '', 5);
  cv.tcp(true, 5, PSH, 'late', 101); // after RST: straggler
  handshake(cv, 90000, 9000);
  cv.tcp(true, 90001, PSH, 'two', 9001);
  const { sink, stats } = await run(cv.write('reuse.pcap'));
  assert.equal(sink.conns.length, 2);
  assert.equal(sink.conns[0].closeTs, tRst);
  assert.deepEqual(ev(sink.conns[0].events), ['C:one']);
  assert.deepEqual(ev(sink.conns[1].events), ['C:two']);
  assert.equal(sink.conns[1].conn.id, 2);
  assert.equal(stats.skipped['tcp-after-close'], 1);
  assert.equal(stats.tcpConns, 2);
});

test('SYN with data (TCP Fast Open) and retransmitted SYN', async () => {
  const cv = new Conv(C, S);
  cv.tcp(true, 500, SYN, 'early');
  cv.tcp(true, 500, SYN, 'early');
  cv.tcp(false, 900, SYN, '', 506);
  cv.tcp(true, 506, PSH, '-more', 901);
  const { sink } = await run(cv.write('tfo.pcap'));
  assert.equal(sink.conns.length, 1);
  assert.equal(sink.stream(sink.conns[0], true).toString(), 'early-more');
});

test('UDP: one onData per datagram; client = first sender unless a server port says otherwise', async () => {
  const cv = new Conv({ addr: '10.0.0.1', port: 33333 }, { addr: '10.0.0.53', port: 53 });
  cv.udp(false, 'response-first'); // the query was not captured
  cv.udp(true, 'query');
  cv.udp(false, 'response');
  const cv2 = new Conv({ addr: '10.0.0.5', port: 40001 }, { addr: '10.0.0.6', port: 40002 });
  cv2.udp(true, 'a');
  cv2.udp(false, 'b');
  const r1 = await run(cv.write('udp1.pcap')), r2 = await run(cv2.write('udp2.pcap'));
  const c = r1.sink.conns[0];
  assert.equal(c.conn.transport, 'udp');
  assert.equal(c.conn.server.port, 53);
  assert.equal(c.conn.roleKnown, false);
  assert.deepEqual(ev(c.events), ['S:response-first', 'C:query', 'S:response']);
  assert.equal(r1.stats.udpConns, 1);
  const d = r2.sink.conns[0];
  assert.equal(d.conn.client.port, 40001);
  assert.equal(d.conn.roleKnown, true);
  assert.deepEqual(ev(d.events), ['C:a', 'S:b']);
});

const links: Link[] = ['eth', 'vlan', 'qinq', 'sll', 'sll2', 'null-le', 'null-be', 'loop', 'raw'];
for (const link of links) {
  for (const v6 of [false, true]) {
    test(`link type ${link} (${LINKTYPE[link]}) over IPv${v6 ? 6 : 4}`, async () => {
      const c = v6 ? { addr: '2001:db8::1', port: 40000 } : C;
      const s = v6 ? { addr: '2001:db8:0:1::2', port: 80 } : S;
      const cv = new Conv(c, s, link);
      handshake(cv, 1, 100);
      cv.tcp(true, 2, PSH, 'ping', 101);
      cv.tcp(false, 101, PSH, 'pong', 6);
      cv.udp(true, 'dgram');
      const { sink, stats } = await run(cv.write(`link-${link}-${v6}.pcap`));
      assert.deepEqual(stats.skipped, {});
      assert.deepEqual(sink.conns[0].conn.client, c);
      assert.deepEqual(sink.conns[0].conn.server, s);
      assert.deepEqual(ev(sink.conns[0].events), ['C:ping', 'S:pong']); // Ethernet padding never leaks in
      assert.deepEqual(ev(sink.conns[1].events), ['C:dgram']);
    });
  }
}

test('raw IPv4 (228) and raw IPv6 (229) link types; IPv6 extension headers; IPv4 options', async () => {
  const p4 = tcpIp({ src: '192.0.2.1', dst: '192.0.2.2', sport: 1234, dport: 80, seq: 1, flags: PSH, data: 'v4' });
  const p4opt = ip('192.0.2.1', '192.0.2.2', 6, tcpIp({ src: '192.0.2.1', dst: '192.0.2.2', sport: 1234, dport: 80, seq: 3, flags: PSH, data: 'opt' }).subarray(20), { options: true });
  const p6 = tcpIp({ src: 'fe80::1', dst: 'fe80::2', sport: 1234, dport: 80, seq: 1, flags: PSH, data: 'v6ext' }, { v6ext: true });
  const f4 = tmpFile('228.pcap'), f6 = tmpFile('229.pcap');
  writePcap(f4, 228, [{ ts: 1n, data: p4 }, { ts: 2n * 1000n, data: p4opt }]);
  writePcap(f6, 229, [{ ts: 1000n, data: p6 }]);
  const a = await run(f4), b = await run(f6);
  assert.equal(a.sink.stream(a.sink.conns[0], true).toString(), 'v4opt');
  assert.equal(b.sink.stream(b.sink.conns[0], true).toString(), 'v6ext');
  assert.equal(b.sink.conns[0].conn.client.addr, 'fe80::1');
});

test('pcap variants: little/big endian, micro/nanosecond timestamps', async () => {
  const ts = 1_700_000_123_456_789_123n;
  const pkt = frame('eth', udpIp({ src: '10.1.1.1', dst: '10.1.1.2', sport: 5000, dport: 53, data: 'q' }));
  for (const be of [false, true]) {
    for (const ns of [false, true]) {
      const f = tmpFile(`v-${be}-${ns}.pcap`);
      writePcap(f, 1, [{ ts, data: pkt }], { be, ns });
      const { sink } = await run(f);
      assert.equal(sink.conns[0].openTs, ns ? ts : (ts / 1000n) * 1000n, `be=${be} ns=${ns}`);
      assert.deepEqual(ev(sink.conns[0].events), ['C:q']);
    }
  }
});

test('pcapng: per-interface link types and if_tsresol, SPB, a second big-endian section', async () => {
  const ts = 1_700_000_000_123_456_789n;
  const eth = frame('eth', udpIp({ src: '10.2.0.1', dst: '10.2.0.2', sport: 5001, dport: 53, data: 'eth-ns' }));
  const sll2 = frame('sll2', udpIp({ src: '10.2.0.3', dst: '10.2.0.4', sport: 5002, dport: 53, data: 'sll2-us' }));
  const nul = frame('null-le', udpIp({ src: '10.2.0.5', dst: '10.2.0.6', sport: 5003, dport: 53, data: 'null-2^-20' }));
  const spb = frame('eth', udpIp({ src: '10.2.0.7', dst: '10.2.0.8', sport: 5004, dport: 53, data: 'spb' }));
  const big = frame('raw', udpIp({ src: '10.2.0.9', dst: '10.2.0.10', sport: 5005, dport: 53, data: 'be-section' }));
  const f = tmpFile('multi.pcapng');
  writePcapng(f, [
    { ifaces: [{ linkType: 1, tsresol: 9 }, { linkType: 276 }, { linkType: 0, tsresol: 0x80 | 20 }],
      recs: [{ ts, data: eth, iface: 0 }, { ts, data: sll2, iface: 1 }, { ts, data: nul, iface: 2 }] },
    { ifaces: [{ linkType: 1 }], recs: [{ ts: 0n, data: spb }], spb: true },
    { be: true, ifaces: [{ linkType: 101, tsresol: 3 }], recs: [{ ts, data: big }] },
  ]);
  const { sink, stats } = await run(f);
  assert.equal(stats.format, 'pcapng');
  assert.deepEqual(stats.skipped, {});
  assert.deepEqual(sink.conns.map((c) => ev(c.events)[0]), ['C:eth-ns', 'C:sll2-us', 'C:null-2^-20', 'C:spb', 'C:be-section']);
  const t = sink.conns.map((c) => c.openTs);
  assert.equal(t[0], ts);
  assert.equal(t[1], (ts / 1000n) * 1000n);
  const u = (ts * (1n << 20n)) / 1_000_000_000n;
  assert.equal(t[2], (u * 1_000_000_000n) / (1n << 20n));
  assert.equal(t[3], t[2]); // SPB has no timestamp: the previous packet's is reused
  assert.equal(t[4], (ts / 1_000_000n) * 1_000_000n);
});

test('snaplen-cut packets: the captured part is delivered, the rest reported as a gap', async () => {
  const cv = new Conv(C, S);
  handshake(cv, 1, 100);
  const full = frame('eth', tcpIp({ src: C.addr, dst: S.addr, sport: C.port, dport: S.port, seq: 2, ack: 101, flags: ACK | PSH, data: 'abcdefghij' }));
  cv.raw(full.subarray(0, full.length - 4), full.length); // last 4 payload bytes not captured
  cv.tcp(true, 12, PSH, 'next', 101);
  const d = frame('eth', udpIp({ src: C.addr, dst: '10.0.0.53', sport: 3333, dport: 53, data: 'dns-query-cut-longer' }));
  cv.raw(d.subarray(0, d.length - 5), d.length);
  const { sink, stats } = await run(cv.write('snap.pcap'));
  assert.deepEqual(ev(sink.conns[0].events), ['C:abcdef', 'C:gap4', 'C:next']);
  // a UDP datagram too: its captured start, then the rest as lost
  assert.deepEqual(ev(sink.conns[1].events), ['C:dns-query-cut-l', 'C:gap5']);
  assert.equal(stats.snaplenCut, 2);
});

test('fragments that never complete and non-IP frames are counted and skipped', async () => {
  const cv = new Conv(C, S);
  const frag = ip('10.0.0.1', '10.0.0.2', 17, Buffer.alloc(16), { mf: true, id: 1 });
  cv.raw(frame('eth', frag));
  cv.raw(frame('eth', ip('10.0.0.1', '10.0.0.2', 17, Buffer.alloc(16), { fragOffset: 2, id: 2 })));
  const arp = Buffer.concat([Buffer.from('ffffffffffff0200000000010806', 'hex'), Buffer.alloc(46)]);
  cv.raw(arp);
  cv.raw(frame('eth', ip('10.0.0.1', '10.0.0.2', 1, Buffer.alloc(8)))); // ICMP
  cv.raw(Buffer.alloc(6)); // runt frame
  const { stats, sink } = await run(cv.write('skips.pcap'));
  assert.equal(sink.conns.length, 0);
  assert.deepEqual(stats.skipped, { 'ip-fragment': 2, 'not-ip': 1, 'not-tcp-udp': 1, 'truncated-link': 1 });
  assert.equal(stats.packets, 5);
});

test('truncated file (cut mid-packet): earlier packets delivered, the cut record counted', async () => {
  const cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, PSH, 'complete', 101);
  cv.tcp(true, 10, PSH, 'this packet is cut', 101);
  const f = cv.write('trunc.pcap');
  const buf = fs.readFileSync(f);
  fs.writeFileSync(f, buf.subarray(0, buf.length - 7));
  const { sink, stats } = await run(f);
  assert.equal(sink.stream(sink.conns[0], true).toString(), 'complete');
  assert.equal(stats.skipped['truncated-record'], 1);
  assert.equal(stats.packets, 4);
  assert.equal(sink.conns[0].closes, 1);
  // pcapng cut mid-block
  const g = tmpFile('trunc.pcapng');
  const ng = writePcapng(g, [{ ifaces: [{ linkType: 1 }], recs: cv.recs }]);
  fs.writeFileSync(g, ng.subarray(0, ng.length - 10));
  const r = await run(g);
  assert.equal(r.sink.stream(r.sink.conns[0], true).toString(), 'complete');
  assert.equal(r.stats.skipped['truncated-record'], 1);
});

test('garbage: unreadable headers reject with a clear Error; damage after the header is counted, never thrown', async () => {
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /not a capture file/],
    ['text', Buffer.from('hello, this is not a capture file at all'), /not a pcap or pcapng file/],
    ['short-pcap', Buffer.from('d4c3b2a1020004', 'hex'), /truncated pcap file header/],
    ['gzip', Buffer.from('1f8b0800000000000003', 'hex'), /gzip/],
    ['bad-bom', Buffer.concat([Buffer.from('0a0d0d0a1c000000deadbeef', 'hex'), Buffer.alloc(16)]), /byte-order magic/],
  ];
  for (const [name, data, re] of cases) {
    const f = tmpFile(name);
    fs.writeFileSync(f, data);
    await assert.rejects(replayFile(f, new CollectSink()), re, name);
  }
  await assert.rejects(replayFile(tmpFile('missing'), new CollectSink()), /ENOENT/);
  // valid pcap header, then random bytes (deterministic), then a huge record length
  let x = 12345;
  const rnd = Buffer.alloc(4096).map(() => ((x = (x * 1103515245 + 12345) & 0x7fffffff) >> 16) & 0xff);
  const f = tmpFile('garbage-body.pcap');
  writePcap(f, 1, []);
  fs.appendFileSync(f, rnd);
  const r = await run(f);
  assert.ok((r.stats.skipped['corrupt-record'] ?? 0) + (r.stats.skipped['truncated-record'] ?? 0) >= 1, JSON.stringify(r.stats.skipped));
  // random frames inside valid records: every one decoded or skipped, none crashes
  const recs = [];
  for (let i = 0; i < 300; i++) {
    const len = (i * 37) % 200;
    const data = Buffer.alloc(len).map(() => ((x = (x * 1103515245 + 12345) & 0x7fffffff) >> 16) & 0xff);
    if (len > 14 && i % 2) { data[12] = 0x08; data[13] = 0x00; data[14] = 0x45; } // push some into the IPv4 path
    recs.push({ ts: BigInt(i) * 1000n, data: Buffer.from(data) });
  }
  for (const lt of [1, 0, 113, 276, 101, 228, 229, 108, 147]) {
    const g = tmpFile(`fuzz-${lt}.pcap`);
    writePcap(g, lt, recs);
    const r2 = await run(g);
    assert.equal(r2.stats.packets, 300);
    for (const c of r2.sink.conns) assert.equal(c.closes, 1);
  }
  // pcapng with a broken block length after a good block
  const h = tmpFile('garbage.pcapng');
  const ng = writePcapng(h, [{ ifaces: [{ linkType: 1 }], recs: [] }]);
  fs.writeFileSync(h, Buffer.concat([ng, Buffer.from('0600000007000000', 'hex'), Buffer.alloc(40)]));
  const r3 = await run(h);
  assert.equal(r3.stats.skipped['corrupt-block'], 1);
});

test('a throwing sink rejects replayFile instead of crashing the process', async () => {
  const cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, PSH, 'boom', 101);
  const f = cv.write('throw.pcap');
  const sink = new CollectSink();
  sink.onData = () => { throw new Error('sink failed'); };
  await assert.rejects(replayFile(f, sink), /sink failed/);
  const g = tmpFile('throw.pcapng');
  writePcapng(g, [{ ifaces: [{ linkType: 1 }], recs: cv.recs }]);
  await assert.rejects(replayFile(g, sink), /sink failed/);
});

test('hand-built captures agree with tshark as well', { skip: haveTshark() ? false : 'tshark not installed' }, async () => {
  const files: string[] = [];
  const mk = (name: string, link: Link, v6: boolean, body: (cv: Conv) => void) => {
    const cv = new Conv(v6 ? { addr: '2001:db8::1', port: 40000 } : C, v6 ? { addr: '2001:db8::2', port: 80 } : S, link);
    body(cv);
    files.push(cv.write(name));
  };
  const script = (cv: Conv) => {
    handshake(cv, 0xfffffff0, 7);
    cv.tcp(true, 0xfffffff1, 0, 'A'.repeat(10), 8);
    cv.tcp(true, 0xfffffffb, 0, 'B'.repeat(10), 8); // crosses 2^32
    cv.tcp(true, 15, 0, 'D'.repeat(10), 8); // out of order (C missing yet)
    cv.tcp(true, 5, 0, 'C'.repeat(10), 8);
    cv.tcp(true, 5, 0, 'C'.repeat(10), 8); // retransmission
    cv.tcp(false, 8, PSH, 'response', 25);
    cv.udp(true, 'datagram-1');
    cv.udp(false, 'datagram-2');
    cv.tcp(true, 25, FIN, '', 16);
    cv.tcp(false, 16, FIN, '', 26);
  };
  mk('x-eth.pcap', 'eth', false, script);
  mk('x-vlan6.pcap', 'qinq', true, script);
  mk('x-sll2.pcap', 'sll2', false, script);
  mk('x-null6.pcap', 'null-le', true, script);
  mk('x-sll.pcap', 'sll', true, script);
  mk('x-gap.pcap', 'eth', false, (cv) => {
    handshake(cv, 1, 100);
    cv.tcp(true, 2, 0, 'aaaa', 101);
    cv.tcp(true, 10, 0, 'cccc', 101);
    cv.tcp(false, 101, 0, 'resp', 14);
  });
  for (const f of files) {
    const r = await compareWithTshark(f);
    assert.deepEqual(r.problems, [], f);
    assert.ok(r.tcpCompared === 1 && r.segmentChecks === 2, f);
  }
});

test('a closed connection absorbs stragglers for 2 minutes of capture time, then the 4-tuple is free', async () => {
  const cv = new Conv(C, S);
  handshake(cv, 1, 100);
  cv.tcp(true, 2, PSH, 'one', 101);
  cv.tcp(true, 5, FIN, '', 101);
  cv.tcp(false, 101, FIN, '', 6);
  cv.tcp(true, 6, 0, '', 102); // final ACK: straggler
  const recs = cv.recs;
  const late = recs[recs.length - 1].ts + 200_000_000_000n;
  recs.push({ ts: late, data: frame('eth', tcpIp({ src: C.addr, dst: S.addr, sport: C.port, dport: S.port, seq: 777, ack: 1, flags: ACK | PSH, data: 'two' })) });
  const { sink, stats } = await run(cv.write('linger.pcap'));
  assert.equal(sink.conns.length, 2);
  assert.deepEqual(ev(sink.conns[0].events), ['C:one']);
  assert.deepEqual(ev(sink.conns[1].events), ['C:two']);
  assert.equal(sink.conns[1].conn.roleKnown, false);
  assert.equal(sink.conns[1].openTs, late);
  assert.equal(stats.skipped['tcp-after-close'], 1);
});

test('IPv4 and IPv6 fragments are reassembled (out of order, duplicated), and agree with tshark', async () => {
  const body = Buffer.alloc(3000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  const recs = [];
  let t = 1_000_000_000n;
  for (const [src, dst] of [['10.0.0.1', '10.0.0.53'], ['2001:db8::1', '2001:db8::53']]) {
    const l4 = udpL4({ src, dst, sport: 40000, dport: 53, data: body });
    const fr = fragments(src, dst, 17, l4, 1024, 77);
    // last first, then the first, a duplicate, then the middle one
    for (const p of [fr[2], fr[0], fr[0], fr[1]]) recs.push({ ts: (t += 1000n), data: frame('eth', p) });
  }
  const f = tmpFile('frag.pcap');
  writePcap(f, 1, recs);
  const { sink, stats } = await run(f);
  assert.equal(stats.ipReassembled, 2);
  assert.deepEqual(stats.skipped, {});
  assert.equal(sink.conns.length, 2);
  for (const c of sink.conns) {
    assert.equal(c.datagrams.length, 1);
    assert.ok(c.datagrams[0].bytes.equals(body));
    assert.equal(c.conn.server.port, 53);
  }
  assert.equal(sink.conns[1].conn.client.addr, '2001:db8::1');
  if (haveTshark()) {
    const r = await compareWithTshark(f);
    assert.deepEqual(r.problems, []);
    assert.equal(r.udpCompared, 2);
  }
});
