// DNS over TLS (RFC 7858: TCP, the 2-byte length prefix inside TLS) through the running agent:
// unbound serving tls-port on 127.0.0.1, queried by dig +tls (BIND, OpenSSL: several queries on
// one kept-open connection, an NXDOMAIN, a 26 KB TXT answer) and by kdig +tls (Knot, GnuTLS),
// whose SSLKEYLOGFILE lets tshark decrypt its connections: the oracle for both sides of them; and by
// a second unbound forwarding over TLS (forward-tls-upstream), the resolver-to-upstream DoT client.
// Expected: the DNS spans DNS over TCP gives — question, type, rcode, answers — on both sides (kdig's
// own through the GnuTLS tracer). Over TLS the 26 KB answer arrives whole (over plain TCP the
// socket tracer's capture limit cuts it). Then a resolver's DoT connection opened before the agent
// (the usual case: it is kept open): queries on it later get both spans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { requireBpf, startAgent, waitFor, FlatSpan } from '../helpers/agent';
import { startLoCapture, stopLoCapture, Capture } from '../helpers/capture';
import { startUnbound, startForwarder, haveUnbound, BIG_TXT, Unbound } from './dot-unbound';

const SERVER = 2;
const CLIENT = 3;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function brief(s: FlatSpan): string {
  const a = s.attributes;
  const answers = ((a['dns.answers'] as string[] | undefined) ?? []);
  return `${a['dns.question.name']} ${a['dns.question.type']} ${a['dns.response_code']} [${answers.length > 3 ? `${answers.length} answers` : answers.join(',')}]`;
}

/** kdig's DNS messages as tshark decrypts them: one line per answered query, keyed by id. */
function oracle(pcap: string, port: number, keylog: string): Map<number, string> {
  const out = execFileSync('tshark', ['-r', pcap, '-o', `tls.keylog_file:${keylog}`, '-d', `tcp.port==${port},tls`, '-d', `tls.port==${port},dns`,
    '-Y', 'dns.flags.response == 1', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,',
    '-e', 'dns.id', '-e', 'dns.qry.name', '-e', 'dns.qry.type', '-e', 'dns.flags.rcode', '-e', 'dns.a', '-e', 'dns.aaaa'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const types: Record<string, string> = { 1: 'A', 28: 'AAAA', 16: 'TXT' };
  const rcodes: Record<string, string> = { 0: 'NOERROR', 3: 'NXDOMAIN' };
  const m = new Map<number, string>();
  for (const l of out.split('\n').filter((x) => x.trim())) {
    const [id, name, type, rcode, a, aaaa] = l.split('\t');
    m.set(Number(id), `${name} ${types[type] ?? type} ${rcodes[rcode] ?? rcode} [${[a, aaaa].filter(Boolean).join(',')}]`);
  }
  return m;
}

test('DNS over TLS through the running agent: dig +tls and kdig +tls against unbound, both sides, as tshark decrypts kdig\'s', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!haveUnbound() || !has('kdig') || !has('tshark')) {
    if (process.env.CI === 'true') throw new Error('needs unbound, knot-dnsutils (kdig) and tshark');
    t.skip('needs unbound, knot-dnsutils (kdig) and tshark');
    return;
  }
  const agent = await startAgent();
  let ub: Unbound | undefined;
  let cap: Capture | undefined;
  let fwdPid = 0;
  try {
    ub = await startUnbound();
    const port = ub.tls;
    const pcap = path.join(ub.pki.dir, 'dot.pcapng');
    const keylog = path.join(ub.pki.dir, 'kdig-keys.txt');
    cap = await startLoCapture(pcap, `tcp port ${port}`, port);
    const dig = (args: string[]) => execFileSync('dig', ['@127.0.0.1', '-p', String(port), '+tls', '+tries=1', '+time=10', ...args], { encoding: 'utf8', timeout: 30_000 });
    // Two queries on one connection (+keepopen), then an NXDOMAIN, then the big answer.
    assert.equal(dig(['+keepopen', '+short', 'www.example.test', 'A', 'www.example.test', 'AAAA']).trim(), '10.1.2.3\nfd00::7');
    assert.match(dig(['nx.example.test', 'A']), /status: NXDOMAIN/);
    assert.match(dig(['big.example.test', 'TXT']), /ANSWER: 120,/);
    // A resolver forwarding over TLS: dig asks it over UDP, it asks unbound over DoT.
    const fwd = await startForwarder(ub);
    fwdPid = fwd.served.proc.pid!;
    const viaFwd = (name: string) => execFileSync('dig', ['@127.0.0.1', '-p', String(fwd.port), '+tries=1', '+time=10', '+short', name, 'A'], { encoding: 'utf8', timeout: 30_000 });
    try {
      assert.equal(viaFwd('fwd.example.test').trim(), '');
      assert.equal(viaFwd('www.example.test').trim(), '10.1.2.3');
    } finally { await fwd.stop(); }
    const kdig = spawnSync('kdig', ['@127.0.0.1', '-p', String(port), '+tls', '+short', 'www.example.test', 'A', 'nope.example.test', 'AAAA'],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, SSLKEYLOGFILE: keylog } });
    assert.equal(kdig.status, 0, kdig.stderr);
    await stopLoCapture(cap);
    cap = undefined;

    const kdigWant = oracle(pcap, port, keylog);
    assert.deepEqual([...kdigWant.values()].sort(), ['nope.example.test AAAA NXDOMAIN []', 'www.example.test A NOERROR [10.1.2.3]'], 'tshark decrypted kdig\'s two queries');

    const onPort = () => agent.spans().filter((s) => s.attributes['network.protocol.name'] === 'dns' && s.attributes['server.port'] === port);
    const digWant = ['big.example.test TXT NOERROR [120 answers]', 'nx.example.test A NXDOMAIN []', 'www.example.test A NOERROR [10.1.2.3]', 'www.example.test AAAA NOERROR [fd00::7]'];
    await waitFor(() => onPort().filter((s) => s.kind === SERVER).length >= 8 && onPort().filter((s) => s.kind === CLIENT).length >= 8, 30_000)
      .catch(() => undefined);
    const spans = onPort();
    const dump = JSON.stringify(spans.map((s) => [s.kind, s.attributes['process.executable.name'], brief(s)]));
    const digClient = spans.filter((s) => s.kind === CLIENT && s.attributes['process.executable.name'] === 'dig');
    assert.deepEqual(digClient.map(brief).sort(), digWant, dump);
    const server = spans.filter((s) => s.kind === SERVER);
    for (const s of server) assert.equal(s.attributes['process.executable.name'], 'unbound');
    // unbound's spans: dig's four, the forwarder's two and kdig's two, kdig's exactly as tshark read
    // them (by message id).
    assert.equal(server.length, 8, dump);
    const byId = new Map(server.map((s) => [Number(s.attributes['telegen.dns.id']), s]));
    for (const [id, want] of kdigWant) assert.equal(byId.get(id) && brief(byId.get(id)!), want, `kdig id ${id}: ${dump}`);
    // kdig's own side, through the GnuTLS tracer (1d96308): the same two, by message id.
    const kdigClient = spans.filter((s) => s.kind === CLIENT && s.attributes['process.executable.name'] === 'kdig');
    assert.deepEqual(kdigClient.map((s) => `${s.attributes['telegen.dns.id']} ${brief(s)}`).sort(), [...kdigWant].map(([id, w]) => `${id} ${w}`).sort(), dump);
    // The forwarder's side: a DoT client span per question it forwarded, each in the trace of the
    // UDP question it was answering, and unbound's server span of it.
    const fwdClient = spans.filter((s) => s.kind === CLIENT && s.attributes['process.pid'] === fwdPid);
    assert.deepEqual(fwdClient.map(brief).sort(), ['fwd.example.test A NXDOMAIN []', 'www.example.test A NOERROR [10.1.2.3]'], dump);
    const all = agent.spans();
    for (const s of fwdClient) {
      const asked = all.find((x) => x.kind === SERVER && x.attributes['process.pid'] === fwdPid && x.attributes['dns.question.name'] === s.attributes['dns.question.name']);
      assert.ok(asked, `the forwarder's UDP server span for ${brief(s)}`);
      assert.equal(s.traceId, asked.traceId, `${brief(s)} in the trace of the question it answers`);
    }
    const fwdIds = new Set(fwdClient.map((s) => Number(s.attributes['telegen.dns.id'])));
    assert.deepEqual(server.filter((s) => fwdIds.has(Number(s.attributes['telegen.dns.id']))).map(brief).sort(), fwdClient.map(brief).sort(), dump);
    const digIds = new Set(digClient.map((s) => Number(s.attributes['telegen.dns.id'])));
    assert.deepEqual(server.filter((s) => digIds.has(Number(s.attributes['telegen.dns.id']))).map(brief).sort(), digWant, dump);
    // The 26 KB answer, whole on both sides: every TXT string, nothing cut.
    for (const s of spans.filter((x) => x.attributes['dns.question.name'] === 'big.example.test')) {
      assert.deepEqual([...(s.attributes['dns.answers'] as string[])].sort(), BIG_TXT, `kind ${s.kind}`);
      assert.equal(s.attributes['telegen.unknown'], undefined);
    }
    for (const s of spans) {
      assert.equal(s.attributes['server.address'], '127.0.0.1');
      assert.equal(s.status.code ?? 0, 0, brief(s)); // NXDOMAIN is an answer (decoders/dns/README.md)
      assert.equal(s.attributes['tls.established'], true, `DoT: ${brief(s)} says it was encrypted`);
    }
    // The forwarder's UDP questions were not.
    for (const s of all.filter((x) => x.kind === SERVER && x.attributes['process.pid'] === fwdPid && x.attributes['network.transport'] === 'udp'))
      assert.equal(s.attributes['tls.established'], undefined, brief(s));
  } finally {
    if (cap) await stopLoCapture(cap);
    if (ub) await ub.stop();
    assert.equal(await agent.stop(), 0);
  }
});

test('DNS over TLS on a connection opened before the agent: a resolver\'s kept-open upstream connection, both sides', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!haveUnbound()) {
    if (process.env.CI === 'true') throw new Error('needs unbound');
    t.skip('needs unbound');
    return;
  }
  const ub = await startUnbound();
  let fwd: Awaited<ReturnType<typeof startForwarder>> | undefined;
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    fwd = await startForwarder(ub);
    const ask = (name: string) => execFileSync('dig', ['@127.0.0.1', '-p', String(fwd!.port), '+tries=1', '+time=10', '+short', name, 'A'], { encoding: 'utf8', timeout: 30_000 }).trim();
    assert.equal(ask('www.example.test'), '10.1.2.3');
    // The forwarder's DoT connection, open before the agent: its local port.
    const ss = execFileSync('ss', ['-Htn', 'state', 'established', `dst 127.0.0.1:${ub.tls}`], { encoding: 'utf8' });
    const ports = [...ss.matchAll(/127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+/g)].map((m) => Number(m[1]));
    assert.equal(ports.length, 1, ss);
    agent = await startAgent();
    for (const n of ['a1', 'a2', 'a3']) assert.equal(ask(`${n}.example.test`), '');
    const dot = () => agent!.spans().filter((s) => s.attributes['network.protocol.name'] === 'dns' && s.attributes['server.port'] === ub.tls);
    await waitFor(() => dot().length >= 6, 30_000).catch(() => undefined);
    const spans = dot();
    const dump = JSON.stringify(spans.map((s) => [s.kind, s.attributes['process.pid'], brief(s), s.attributes['network.peer.port']]));
    const want = ['a1.example.test A NXDOMAIN []', 'a2.example.test A NXDOMAIN []', 'a3.example.test A NXDOMAIN []'];
    const client = spans.filter((s) => s.kind === CLIENT);
    const server = spans.filter((s) => s.kind === SERVER);
    assert.deepEqual(client.map(brief).sort(), want, dump);
    assert.deepEqual(server.map(brief).sort(), want, dump);
    for (const s of client) assert.equal(s.attributes['process.pid'], fwd.served.proc.pid);
    for (const s of server) {
      assert.equal(s.attributes['process.pid'], ub.served.proc.pid);
      assert.equal(s.attributes['network.peer.port'], ports[0], 'the connection opened before the agent');
    }
  } finally {
    if (fwd) await fwd.stop();
    await ub.stop();
    if (agent) assert.equal(await agent.stop(), 0);
  }
});
