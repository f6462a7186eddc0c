// DNS over HTTPS (RFC 8484: application/dns-message over HTTP/2, POST with the message as body,
// GET with it as ?dns=base64url) through the running agent: unbound's https-port on 127.0.0.1,
// queried by dig +https and +https-get (BIND: OpenSSL and libnghttp2) and by curl, whose
// SSLKEYLOGFILE lets tshark decrypt its connections: the oracle for curl's and unbound's spans of
// them. Expected: one HTTP/2 span per query on each side, method, path (the GET's query string is
// the DNS message), status and content types as sent. tshark also reads the DNS message inside
// each body; the agent does not (its HTTP/2 decoder keeps no bodies): the spans are HTTP spans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { requireBpf, startAgent, waitFor, FlatSpan } from '../helpers/agent';
import { startLoCapture, stopLoCapture, Capture } from '../helpers/capture';
import { startUnbound, haveUnbound, unboundHasDoh, Unbound } from './dot-unbound';

const SERVER = 2;
const CLIENT = 3;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** A DNS query (RFC 1035 §4.1): id, RD, one question. */
function query(id: number, name: string, type: number): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0); head.writeUInt16BE(0x0100, 2); head.writeUInt16BE(1, 4);
  const labels = Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0); tail.writeUInt16BE(1, 2);
  return Buffer.concat([head, labels, tail]);
}

function brief(s: FlatSpan): string {
  const a = s.attributes;
  const q = a['url.query'] ? `?${a['url.query']}` : '';
  return `${a['http.request.method']} ${a['url.path']}${q} ${a['http.response.status_code']} ${a['http.response.header.content-type']}`;
}

test('DNS over HTTPS through the running agent: dig +https/+https-get and curl against unbound, HTTP/2 spans on both sides as tshark decrypts curl\'s', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (!haveUnbound() || !unboundHasDoh() || !has('tshark')) {
    if (process.env.CI === 'true') throw new Error('needs unbound built with libnghttp2 (Debian\'s is) and tshark');
    t.skip('needs unbound with DNS over HTTPS and tshark');
    return;
  }
  const agent = await startAgent();
  let ub: Unbound | undefined;
  let cap: Capture | undefined;
  try {
    ub = await startUnbound({ https: true });
    const port = ub.https;
    const pcap = path.join(ub.pki.dir, 'doh.pcapng');
    const keylog = path.join(ub.pki.dir, 'curl-keys.txt');
    const post = path.join(ub.pki.dir, 'q.bin');
    fs.writeFileSync(post, query(0x1234, 'www.example.test', 28));
    const get = query(0, 'www.example.test', 1).toString('base64url');
    cap = await startLoCapture(pcap, `tcp port ${port}`, port);
    const dig = (args: string[]) => execFileSync('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=10', '+short', ...args], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(dig(['+https', 'www.example.test', 'A']).trim(), '10.1.2.3');
    assert.equal(dig(['+https-get', 'www.example.test', 'AAAA']).trim(), 'fd00::7');
    const curl = (args: string[]) => execFileSync('curl', ['-sS', '--http2', '--cacert', ub!.pki.ca, '-o', '/dev/null', '-w', '%{http_code} %{content_type}', ...args],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, SSLKEYLOGFILE: keylog } });
    assert.equal(curl(['-H', 'accept: application/dns-message', `https://127.0.0.1:${port}/dns-query?dns=${get}`]), '200 application/dns-message');
    assert.equal(curl(['-H', 'content-type: application/dns-message', '--data-binary', `@${post}`, `https://127.0.0.1:${port}/dns-query`]), '200 application/dns-message');
    // a 26 KB answer (120 TXT records): unbound writes its 16,384-byte DATA frame in one SSL_write
    // of 16,393 bytes, 9 more than the TLS tracer keeps: lost inside the frame's payload
    const bigGet = query(0, 'big.example.test', 16).toString('base64url');
    assert.equal(curl(['-H', 'accept: application/dns-message', `https://127.0.0.1:${port}/dns-query?dns=${bigGet}`]), '200 application/dns-message');
    await stopLoCapture(cap);
    cap = undefined;

    // tshark: curl's two requests, their answers and the DNS messages inside.
    const out = execFileSync('tshark', ['-r', pcap, '-o', `tls.keylog_file:${keylog}`, '-Y', 'http2.type == 1 || dns', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,',
      '-e', 'http2.headers.method', '-e', 'http2.headers.path', '-e', 'http2.headers.status', '-e', 'dns.flags.response', '-e', 'dns.a', '-e', 'dns.aaaa'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const rows = out.split('\n').filter((l) => l.trim()).map((l) => l.split('\t'));
    const requests = rows.filter((r) => r[0]).map((r) => `${r[0]} ${r[1]}`);
    assert.deepEqual(requests, [`GET /dns-query?dns=${get}`, 'POST /dns-query', `GET /dns-query?dns=${bigGet}`]);
    assert.deepEqual(rows.filter((r) => r[2]).map((r) => r[2]), ['200', '200', '200']);
    assert.deepEqual(rows.filter((r) => r[3] === '1' && (r[4] || r[5])).map((r) => r[4] || r[5]), ['10.1.2.3', 'fd00::7'], 'tshark reads the answers in the bodies');
    const bigLen = Number(execFileSync('tshark', ['-r', pcap, '-o', `tls.keylog_file:${keylog}`, '-Y', 'http2.type == 0 && tcp.srcport == ' + port, '-T', 'fields', '-e', 'http2.length'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split(/[\s,]+/).filter(Boolean).map(Number).filter((n) => n > 1000).reduce((a, b) => a + b, 0));
    assert.ok(bigLen > 16_384, `tshark: the TXT answer's DATA is ${bigLen} bytes`);

    const curlWant = [`GET /dns-query?dns=${get} 200 application/dns-message`, 'POST /dns-query 200 application/dns-message', `GET /dns-query?dns=${bigGet} 200 application/dns-message`];
    const onPort = () => agent.spans().filter((s) => s.attributes['server.port'] === port);
    await waitFor(() => onPort().filter((s) => s.kind === SERVER).length >= 5 && onPort().filter((s) => s.kind === CLIENT).length >= 5, 30_000).catch(() => undefined);
    const spans = onPort();
    const dump = JSON.stringify(spans.map((s) => [s.kind, s.attributes['process.executable.name'], brief(s)]));
    const by = (kind: number, exe: string) => spans.filter((s) => s.kind === kind && s.attributes['process.executable.name'] === exe);
    assert.deepEqual(by(CLIENT, 'curl').map(brief).sort(), [...curlWant].sort(), dump);
    const digSpans = by(CLIENT, 'dig');
    assert.equal(digSpans.length, 2, dump);
    const [digPost, digGet] = [digSpans.find((s) => s.attributes['http.request.method'] === 'POST'), digSpans.find((s) => s.attributes['http.request.method'] === 'GET')];
    assert.ok(digPost && digGet, dump);
    assert.equal(brief(digPost), 'POST /dns-query 200 application/dns-message');
    assert.deepEqual(digPost.attributes['http.request.header.content-type'], ['application/dns-message']);
    // dig's GET carries its query as base64url in ?dns= (RFC 8484 §4.1): an AAAA question.
    const dns = Buffer.from(String(digGet.attributes['url.query']).replace(/^dns=/, ''), 'base64url');
    assert.equal(dns.readUInt16BE(12 + 'www.example.test'.length + 2), 28, String(digGet.attributes['url.query'])); // QTYPE after the name
    // unbound answered all five; nothing else on this port.
    const server = by(SERVER, 'unbound');
    assert.equal(server.length, 5, dump);
    assert.deepEqual(server.map(brief).sort(), [...curlWant, brief(digGet), brief(digPost)].sort(), dump);
    assert.equal(spans.length, 10, dump);
    // the 26 KB answer: both sides exact, its body size the DATA tshark read (the 9 bytes the
    // capture lost were inside a DATA payload: nothing of the exchange unknown)
    for (const s of spans.filter((x) => String(x.attributes['url.query']) === `dns=${bigGet}`)) {
      assert.equal(s.attributes['http.response.body.size'], bigLen, dump);
      assert.equal(s.attributes['telegen.unknown'], undefined, `${s.kind} ${dump}`);
    }
    for (const s of spans) {
      assert.equal(s.attributes['network.protocol.version'], '2');
      assert.equal(s.attributes['url.scheme'], 'https');
      assert.equal(s.status.code ?? 0, 0);
    }
  } finally {
    if (cap) await stopLoCapture(cap);
    if (ub) await ub.stop();
    assert.equal(await agent.stop(), 0);
  }
});
