// Go HTTP/2 through the running agent, where the wire alone cannot tell: a client connection
// opened and used BEFORE the agent started (its HPACK dynamic table was never seen, and Go's
// encoder indexes every field it can, so later requests name :path and :authority only by
// table index). The header-field probes on Go's own HPACK code (bpf/go_http2.bpf.c) fill them
// in. Then exec-time attach: a Go server started after the agent has its very first request
// traced in plaintext.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import { startAgent, startServer, waitFor, FlatSpan, Served } from '../helpers/agent';
import { goTlsFixtures, goVersion, agentGoStatus, goKernelCounters, requireGo, startGoTlsServer, httpsGetBody } from './helpers';
import * as os from 'os';
import { h2OffsetsFor, GO_H2_OFFSETS } from '../../host/src/gotrace/http2';
import { kernelFileKey } from '../../host/src/tracers/go-exec';

const SERVER = 2;
const CLIENT = 3;

function summary(s: FlatSpan): string {
  return `${s.attributes['http.request.method']} ${s.attributes['url.path']} ${s.attributes['server.address']} ${s.attributes['http.response.status_code']}`;
}

interface Client { proc: ChildProcess; out: () => string; exited: Promise<number | null> }

function startClient(bin: string, args: string[]): Client {
  const proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => { out += String(d); });
  proc.stderr!.on('data', (d) => { out += String(d); });
  return { proc, out: () => out, exited: new Promise((r) => proc.once('exit', r)) };
}

test('Go HTTP/2: header fields from Go HPACK code on connections older than the agent; exec-time attach', { timeout: 240_000 }, async (t) => {
  const fx = goTlsFixtures(t);
  if (!fx) return;
  const { pki, srv, cli } = fx;
  const servers: Served[] = [];
  const clients: Client[] = [];
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    // Before the agent: two servers, and a client on each that opens its HTTP/2 connection and
    // makes two requests, then waits. Unstripped client → stripped server and the reverse.
    servers.push(await startServer(srv.plain, [pki.cert, pki.key]), await startServer(srv.stripped, [pki.cert, pki.key]));
    // One path per request, so each span names exactly one of them.
    const late = ['/status/201', '/status/404', '/status/503', '/status/202', '/status/203'];
    const pairs = [[cli.stripped, servers[0]], [cli.plain, servers[1]]] as const;
    for (const [bin, s] of pairs) {
      const url = (p: string) => `https://localhost:${s.port}${p}`;
      clients.push(startClient(bin, [pki.ca, 'h2', '0', url('/hello'), url('/status/404'), 'stdin', ...late.map(url)]));
    }
    for (const c of clients) await waitFor(() => c.out().includes('waiting'), 30_000);
    for (const c of clients) assert.match(c.out(), /200 HTTP\/2\.0\n404 HTTP\/2\.0\nwaiting/);

    const cfg = `${pki.dir}/agent.yaml`;
    // No rescan during the test: what is found after the start is found by exec events alone.
    fs.writeFileSync(cfg, 'tracers:\n  profile: { enabled: false }\n  go: { rescan_ms: 600000, exec_hold: true }\n');
    agent = await startAgent({ config: cfg });
    const a = agent;
    const pids = [...servers.map((s) => s.proc.pid!), ...clients.map((c) => c.proc.pid!)];
    const st = await waitFor(async () => {
      const l = await agentGoStatus(a.apiPort);
      return pids.every((p) => l.some((s) => s.pids.includes(p) && s.instrumented && s.http2?.instrumented)) && l;
    }, 30_000);
    for (const s of st.filter((x) => x.pids.some((p) => pids.includes(p)))) assert.ok(s.http2!.probes >= 10, `${s.path}: ${JSON.stringify(s.http2)}`);

    for (const c of clients) c.proc.stdin!.write('go\n');
    for (const c of clients) {
      const code = await Promise.race([c.exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000).unref())]);
      assert.equal(code, 0, c.out());
    }

    const m = await (await a.api('/metrics')).text();
    t.diagnostic(m.split('\n').filter((l) => /^telegen_(decoder_hints|bpf_go)/.test(l)).join('\n'));
    const want = late.map((p) => `GET ${p} localhost ${Number(p.slice(8))}`);
    const onPort = (port: number) => a.spans().filter((s) => s.attributes['server.port'] === port);
    for (const [i, [, s]] of pairs.entries()) {
      const pid: Record<number, number> = { [SERVER]: s.proc.pid!, [CLIENT]: clients[i].proc.pid! };
      const named = (w: string) => onPort(s.port).filter((x) => summary(x) === w).length;
      await waitFor(() => want.slice(2).every((w) => named(w) >= 2), 30_000).catch(() => undefined);
      const spans = onPort(s.port);
      const all = spans.map((x) => `${x.kind === SERVER ? 'server' : 'client'} ${summary(x)}${x.attributes['telegen.hpack.recovered'] ? ' (recovered)' : ''}`).join('; ');
      t.diagnostic(`port ${s.port}: ${all}`);
      for (const kind of [SERVER, CLIENT]) {
        const mine = spans.filter((x) => x.kind === kind);
        for (const x of mine) assert.equal(x.attributes['process.pid'], pid[kind]);
        // The first late request is cut on both sides: a Read blocked since before the agent
        // returns without its entry probe, so its plaintext is lost. The client's second one
        // too: its fields are encoded before its bytes, while the agent is still detecting the
        // protocol of the connection's first plaintext, and the router takes hints only on a
        // bound connection. Every request after those names the right request.
        const got = mine.map(summary);
        for (const w of want.slice(kind === SERVER ? 1 : 2)) assert.ok(got.includes(w), `${kind === SERVER ? 'server' : 'client'} span ${w} missing on ${s.port}: ${all}`);
        // Never wrong: a span names one of the requests made, or nothing.
        for (const x of mine) if (x.attributes['url.path'] !== undefined) assert.ok(late.includes(String(x.attributes['url.path'])), all);
        assert.ok(mine.some((x) => x.attributes['telegen.hpack.recovered'] === true), `no field came from Go HPACK probes: ${all}`);
      }
    }
    // The kernel side of what came out, on /metrics: plaintext records from the crypto/tls
    // probes and header fields from the HPACK probes, with their drop counters beside them.
    const k = await goKernelCounters(a.apiPort);
    assert.ok(k.go_events > 0 && k.go_http2_fields > 0, `Go kernel counters: ${JSON.stringify(k)}`);
    for (const c of ['go_ring_full', 'go_no_conn', 'go_read_fault', 'go_links', 'go_http2_no_conn', 'go_http2_ring_full', 'go_exec_ring_full']) assert.ok(c in k, `${c} missing on /metrics: ${JSON.stringify(k)}`);

    // Exec-time attach: a server file no process ran before (a copy: a new inode), started
    // without a controlling terminal (detached) after the agent; its first request is sent the
    // moment it listens and must come out as a plaintext span.
    const fresh = `${pki.dir}/server-fresh`;
    fs.copyFileSync(srv.stripped, fresh);
    fs.chmodSync(fresh, 0o755);
    const { proc, port: started } = startGoTlsServer(fresh, pki);
    servers.push({ proc, port: 0, stop: async () => { if (proc.exitCode === null && proc.signalCode === null) { const e = new Promise((r) => proc.once('exit', r)); proc.kill('SIGKILL'); await e; } } });
    const port = await started;
    const body = await httpsGetBody(port, '/hello', pki);
    assert.match(body, /hello from go HTTP\/1\.1 \/hello/);
    const first = await waitFor(() => a.spans().find((x) => x.kind === SERVER && x.attributes['process.pid'] === proc.pid && x.attributes['url.path'] === '/hello'), 30_000)
      .catch(() => assert.fail(`the first request to the server started after the agent is not traced: ${JSON.stringify(a.spans().filter((x) => x.attributes['server.port'] === port))}`));
    assert.equal(first.attributes['http.response.status_code'], 200);
    const hooked = (await agentGoStatus(a.apiPort)).find((x) => x.pids.includes(proc.pid!));
    assert.ok(hooked?.instrumented && hooked.http2?.instrumented, JSON.stringify(hooked));
    // It was held stopped at exec until its probes were in (exec_hold), then continued.
    assert.ok(a.logs.join('').split('\n').some((l) => l.includes('held at exec') && l.includes(`"pid":${proc.pid}`) && l.includes('"hooked":true')), 'the fresh server was not held at exec');
    const ke = await goKernelCounters(a.apiPort);
    assert.ok(ke.go_exec_events >= 1 && ke.go_exec_held >= 1, `exec counters: ${JSON.stringify(ke)}`);
    // Its exit removes its probes without waiting for a scan (there is none in this test).
    await servers.pop()!.stop();
    await waitFor(async () => !(await agentGoStatus(a.apiPort)).some((x) => x.path === fresh), 15_000)
      .catch(() => assert.fail('the exited server is still listed as hooked'));
  } finally {
    for (const c of clients) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    for (const s of servers) await s.stop();
    if (agent && agent.proc.exitCode === null && agent.proc.signalCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});

test('HTTP/2 offsets table: the row for the installed Go equals what its DWARF says', { timeout: 300_000 }, (t) => {
  if (!requireGo(t)) return;
  const dir = fs.mkdtempSync(`${os.tmpdir()}/telegen-go-offsets-`);
  try {
    const gen = `${dir}/go-offsets`;
    execFileSync('go', ['build', '-o', gen, `${__dirname}/../../../scripts/go-offsets/main.go`], { env: { ...process.env, GOPROXY: 'off' }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
    const { goVersion: v, ...fields } = JSON.parse(execFileSync(gen, ['http2'], { encoding: 'utf8' })) as Record<string, unknown>;
    assert.equal(v, goVersion());
    assert.deepEqual(h2OffsetsFor(goVersion()), fields);
    assert.ok(GO_H2_OFFSETS.some((r) => r.generatedFrom === goVersion()), 'the installed toolchain generated a row');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('exec-time attach: file keys the kernel compares with (dev as MAJOR << 20 | MINOR) match what stat says', () => {
  // A wrong key would never match go_exec_known: every exec would be reported (and, with
  // exec_hold, every static executable held) again. GNU stat decodes st_dev on its own.
  for (const f of [process.execPath, __filename, os.tmpdir()]) {
    const [dev, major, minor, ino] = execFileSync('stat', ['-L', '-c', '%d %Hd %Ld %i', f], { encoding: 'utf8' }).trim().split(' ').map(Number);
    const k = kernelFileKey(`${dev}:${ino}`)!;
    assert.equal(k.readBigUInt64LE(0), BigInt(ino), f);
    assert.equal(k.readUInt32LE(8), ((major << 20) | minor) >>> 0, f);
  }
  // A device with a minor above 255 (its bits are split in st_dev).
  const st = (0x123 & 0xff) | (259 << 8) | ((0x123 & ~0xff) << 12); // glibc makedev(259, 0x123)
  assert.equal(kernelFileKey(`${st}:7`)!.readUInt32LE(8), (259 << 20) | 0x123);
});
