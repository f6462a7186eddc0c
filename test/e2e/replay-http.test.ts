// Issue 2 item 7: `telegen replay` (the CLI a user runs, no root needed) over the HTTP/1 corpus and
// over a capture this test records itself on lo; every HTTP message agrees with tshark.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync, execFileSync } from 'child_process';
import { repoRoot, corpusDir } from '../helpers/decoder';
import { curl } from '../helpers/agent';
import { Conv, SYN, ACK, PSH } from '../replay/build';
import { rootForCapture, recordOnLo } from '../helpers/capture';

interface JsonSpan { name: string; kind: string; status: string; startTimeUnixNano: string; endTimeUnixNano: string; attributes: Record<string, unknown> }

function replay(file: string): JsonSpan[] {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', file], { encoding: 'utf8', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' }, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

interface TsharkHttp { requests: string[]; codes: number[]; hosts: string[] }

function fromTsv(text: string): TsharkHttp {
  const [header, ...rows] = text.split('\n').filter(Boolean);
  const cols = header.split('\t');
  const c = (row: string[], name: string) => row[cols.indexOf(name)] ?? '';
  const out: TsharkHttp = { requests: [], codes: [], hosts: [] };
  for (const line of rows) {
    const row = line.split('\t');
    const methods = c(row, 'http.request.method').split('|').filter(Boolean);
    const uris = c(row, 'http.request.uri').split('|');
    methods.forEach((m, i) => out.requests.push(`${m} ${uris[i]}`));
    for (const code of c(row, 'http.response.code').split('|').filter(Boolean)) if (Number(code) >= 200 || Number(code) === 101) out.codes.push(Number(code));
    for (const h of c(row, 'http.host').split('|').filter(Boolean)) out.hosts.push(h.replace(/:\d+$/, ''));
  }
  return out;
}

function fromSpans(spans: JsonSpan[]): TsharkHttp {
  const http = spans.filter((s) => s.attributes['http.request.method']);
  return {
    requests: http.map((s) => `${s.attributes['http.request.method']} ${s.attributes['url.path']}${s.attributes['url.query'] !== undefined ? `?${s.attributes['url.query']}` : ''}`),
    codes: http.map((s) => s.attributes['http.response.status_code'] as number).filter((c) => c !== undefined),
    hosts: http.map((s) => s.attributes['server.address'] as string).filter(Boolean),
  };
}

const dir = path.join(corpusDir, 'pcap', 'http1');
const captures = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /\.pcap(ng)?$/.test(f)) : [];

test('corpus present (CI has ../shared beside the clone)', () => {
  assert.ok(captures.length >= 10, `expected the HTTP/1 corpus in ${dir}`);
});

for (const f of captures) {
  test(`replay ${f} agrees with tshark`, () => {
    const expected = fromTsv(fs.readFileSync(path.join(dir, f.replace(/\.pcap(ng)?$/, '.expected.tsv')), 'utf8'));
    const got = fromSpans(replay(path.join(dir, f)));
    assert.deepEqual(got.requests.sort(), expected.requests.sort(), 'method and URI of every request');
    assert.deepEqual(got.codes.sort(), expected.codes.sort(), 'final status code of every response');
    for (const h of new Set(expected.hosts)) assert.ok(got.hosts.includes(h), `Host header ${h} as server.address`);
  });
}

test('replay: a truncated capture and a garbage file give a clear error or partial result, never a crash', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-replay-'));
  const src = fs.readFileSync(path.join(dir, 'zeek__pipelined-requests.pcap'));
  const cut = path.join(tmp, 'cut.pcap');
  fs.writeFileSync(cut, src.subarray(0, Math.floor(src.length * 0.6)));
  const spans = replay(cut);
  assert.ok(spans.length >= 1 && spans.length <= 5, `partial capture gives the exchanges it holds (${spans.length})`);
  const junk = path.join(tmp, 'junk.pcap');
  fs.writeFileSync(junk, Buffer.from('this is not a capture file at all'));
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', junk], { encoding: 'utf8', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /telegen: .*(pcap|capture|format|magic)/i);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('replay piped into a reader that stops early (`| head -1`) exits 0 without an EPIPE crash', () => {
  // 3000 exchanges: far more span lines than a pipe buffer holds once the reader has gone.
  const cv = new Conv({ addr: '10.0.0.1', port: 40000 }, { addr: '10.0.0.2', port: 80 });
  let cs = 1, ss = 1;
  cv.tcp(true, 0, SYN); cv.tcp(false, 0, SYN, '', 1); cv.tcp(true, 1, ACK, '', 1);
  for (let i = 0; i < 3000; i++) {
    const req = `GET /item/${i} HTTP/1.1\r\nHost: example.test\r\n\r\n`;
    cv.tcp(true, cs, PSH, req, ss); cs += req.length;
    const res = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    cv.tcp(false, ss, PSH, res, cs); ss += res.length;
  }
  const file = cv.write('many.pcap');
  const cmd = `set -o pipefail; "${process.execPath}" "${path.join(repoRoot, 'bin', 'telegen')}" replay "${file}" | head -1`;
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
  assert.match(r.stdout, /"url.path":"\/item\/0"/, 'the first span reached the reader');
  assert.doesNotMatch(r.stderr, /EPIPE|\n\s+at /, 'no crash report');
  assert.equal(r.status, 0, r.stderr);
});

test('replay of traffic recorded here with tshark on lo agrees with tshark', { timeout: 60_000 }, async (t) => {
  if (!rootForCapture(t)) return;
  const { file } = await recordOnLo(t, { prefix: 'telegen-cap-', file: 'lo.pcapng', servers: [{ argv: [process.execPath, path.join(repoRoot, 'test', 'fixtures', 'http-server.js')] }] }, (port) => {
    const base = `http://127.0.0.1:${port}`;
    curl([`${base}/hello`, `${base}/users/5?x=1`, `${base}/status/500`, `${base}/chunked`]);
    curl(['-X', 'POST', '--data-binary', 'abc=def', `${base}/echo`]);
  });
  const tsv = execFileSync('tshark', ['-r', file, '-Y', 'http', '-T', 'fields', '-E', 'header=y', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=|',
    '-e', 'frame.number', '-e', 'http.request.method', '-e', 'http.request.uri', '-e', 'http.response.code', '-e', 'http.host'], { encoding: 'utf8' });
  const expected = fromTsv(tsv);
  assert.equal(expected.requests.length, 5, 'tshark sees the five requests');
  const got = fromSpans(replay(file));
  assert.deepEqual(got.requests.sort(), expected.requests.sort());
  assert.deepEqual(got.codes.sort(), expected.codes.sort());
});
