// `telegen replay` of DNS queries nobody answered (decoders/dns/testdata/no-answer.pcap, recorded
// by testdata/heldout/record-no-answer.sh: dig 9.18 and dnsmasq 2.90 in a network namespace):
// - a multicast lookup (mDNS to 224.0.0.251:5353, LLMNR to 224.0.0.252:5355) with no responder is
//   no error: silence is those protocols' "nobody has this name" (RFC 6762, RFC 4795). It was
//   ERROR with error.type=timeout.
// - a unicast query over UDP to a silent (SIGSTOPped) dnsmasq stays an error, error.type=timeout.
// - a query over TCP that dnsmasq closed the kept-open connection on without answering (dig +tcp
//   +keepopen; b.test is forwarded to an upstream that refuses TCP) failed by the close:
//   error.type=no_response, as HTTP reports a request closed on before its response (it was
//   timeout), ending at the close.
// tshark is the oracle for which queries got no response, where they went and when the
// connection closed. Needs tshark.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync, execFileSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';

const PCAP = path.join(repoRoot, 'decoders', 'dns', 'testdata', 'no-answer.pcap');
const canRun = fs.existsSync('/usr/bin/tshark');

interface JsonSpan { name: string; status: string; statusMessage?: string; startTimeUnixNano: string; endTimeUnixNano: string; attributes: Record<string, unknown> }

function replay(file: string): JsonSpan[] {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', file], { encoding: 'utf8', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const epochNs = (t: string): bigint => {
  const [s, f = ''] = t.trim().split('.');
  return BigInt(s) * 1_000_000_000n + BigInt((f + '000000000').slice(0, 9));
};

function tshark(filter: string, fields: string[]): string[][] {
  const out = execFileSync('tshark', ['-2', '-r', PCAP, '-d', 'udp.port==5353,dns', '-d', 'udp.port==5355,dns', '-d', 'udp.port==15380,dns', '-d', 'tcp.port==15380,dns', '-d', 'udp.port==15381,dns',
    '-Y', filter, '-T', 'fields', '-E', 'separator=\t', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter(Boolean).map((l) => l.split('\t'));
}

function load() {
  // Every query without a response, as tshark pairs them.
  const unanswered = tshark('dns.flags.response == 0 && !dns.response_in', ['frame.time_epoch', 'ip.dst', 'udp.dstport', 'tcp.stream', 'dns.id', 'dns.qry.name'])
    .map(([t, dst, udpPort, tcpStream, id, name]) => ({ ts: epochNs(t), dst, tcp: udpPort === '', tcpStream, id: Number(id), name }));
  const spans = replay(PCAP);
  const spanOf = (q: { id: number; name: string }) => spans.filter((s) => s.attributes['dns.question.name'] === q.name && s.attributes['telegen.dns.id'] === q.id);
  const multicast = unanswered.filter((q) => /^2(2[4-9]|3\d)\./.test(q.dst));
  const unicastUdp = unanswered.filter((q) => !q.tcp && !multicast.includes(q));
  const overTcp = unanswered.filter((q) => q.tcp);
  assert.deepEqual(multicast.map((q) => `${q.dst} ${q.name}`), ['224.0.0.251 foo.local', '224.0.0.252 foo']);
  assert.deepEqual(unicastUdp.map((q) => q.name), ['c.test', 'd.test']);
  assert.ok(overTcp.length >= 1 && overTcp.every((q) => q.name === 'b.test'), overTcp.map((q) => q.name).join());
  return { spans, spanOf, multicast, unicastUdp, overTcp };
}

test('replay: unanswered multicast lookups (mDNS, LLMNR) are no error; unanswered unicast ones time out', { skip: !canRun && 'needs tshark' }, () => {
  const { spans, spanOf, multicast, unicastUdp } = load();
  for (const q of multicast) {
    const [s, ...more] = spanOf(q);
    assert.equal(more.length, 0, q.name);
    assert.ok(s, `a span for ${q.name}`);
    assert.equal(s.status, 'UNSET', `${q.name}: nobody answering a multicast lookup is its normal "no such name"`);
    assert.equal(s.attributes['error.type'], undefined, q.name);
    assert.equal(s.attributes['telegen.no_response'], true, q.name);
    assert.equal(s.attributes['server.address'], q.dst);
    assert.equal(BigInt(s.startTimeUnixNano), q.ts, q.name);
  }
  // foo.local was sent more than 5 s before the capture's later traffic: the decoder gave up on
  // it there, so it lasted until then (it is not a 0 s lookup).
  const mdns = spanOf(multicast[0])[0];
  const later = tshark('frame.number > 0', ['frame.time_epoch']).map(([t]) => epochNs(t)).filter((t) => t - multicast[0].ts >= 5_000_000_000n);
  assert.ok(later.length > 0);
  assert.ok(BigInt(mdns.endTimeUnixNano) - BigInt(mdns.startTimeUnixNano) >= 5_000_000_000n, `${mdns.startTimeUnixNano} → ${mdns.endTimeUnixNano}`);

  for (const q of unicastUdp) {
    const [s] = spanOf(q);
    assert.ok(s, `a span for ${q.name}`);
    assert.equal(s.status, 'ERROR', q.name);
    assert.equal(s.attributes['error.type'], 'timeout', q.name);
    assert.equal(s.attributes['telegen.no_response'], true, q.name);
  }

  // The answered ones (a.test over TCP and over UDP) stay unset, with their rcode.
  const answered = spans.filter((s) => s.attributes['dns.response_code'] !== undefined);
  assert.equal(answered.length, tshark('dns.flags.response == 1', ['dns.id']).length);
  for (const s of answered) assert.equal(s.status, 'UNSET', s.name);
});

test('replay: a DNS query over TCP whose connection closed before the answer fails with error.type=no_response, ending at the close', { skip: !canRun && 'needs tshark' }, () => {
  const { spanOf, overTcp } = load();
  for (const q of overTcp) {
    const [s] = spanOf(q);
    assert.ok(s, `a span for ${q.name} (tcp.stream ${q.tcpStream})`);
    assert.equal(s.status, 'ERROR', q.name);
    assert.equal(s.attributes['error.type'], 'no_response', `${q.name}: dnsmasq closed the connection before answering`);
    assert.equal(s.statusMessage, 'connection closed before the response');
    assert.equal(s.attributes['network.transport'], 'tcp');
    // The server's FIN came after the query, before any answer; the span ends at the close
    // (between that FIN and the connection's last packet), not at its own query.
    const stream = tshark(`tcp.stream == ${q.tcpStream}`, ['frame.time_epoch', 'tcp.srcport', 'tcp.flags.fin']).map(([t, port, fin]) => ({ ts: epochNs(t), fromServer: port === '15380', fin: fin === '1' || fin === 'True' }));
    const serverFin = stream.find((p) => p.fromServer && p.fin);
    assert.ok(serverFin && serverFin.ts > q.ts, `dnsmasq closed first: ${JSON.stringify(stream, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    const end = BigInt(s.endTimeUnixNano);
    assert.equal(BigInt(s.startTimeUnixNano), q.ts);
    assert.ok(end >= serverFin.ts && end <= stream[stream.length - 1].ts, `${q.name} ends at the close: ${end}`);
  }
});
