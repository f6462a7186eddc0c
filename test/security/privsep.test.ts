// Privilege separation (issue 11 item 1): `telegen run` with security.privilege_separation is a
// root loader that loads/attaches the socket tracer and an unprivileged worker (uid != 0, no
// capabilities, no_new_privs) that drains the ring from fds handed over SCM_RIGHTS and runs the
// decoders, pipeline, export and API. Real BPF, a real HTTP server, curl, and the loader's real
// socket spoken to by hand.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer, waitFor, curl } from '../helpers/agent';
import { makePki } from '../tls/tls-helpers';
import { procStatus as status, loaderSession } from '../helpers/privsep';

const HTTPS_SERVER_JS = `
const https = require('https'); const fs = require('fs');
const srv = https.createServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) }, (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }); res.end('tls ' + req.url);
});
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port));
`;

test('privilege separation: unprivileged worker traces HTTP and HTTPS end to end, loader refuses bad requests, SIGTERM stops both', { timeout: 170_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-privsep-'));
  fs.chmodSync(dir, 0o755); // the worker (nobody) must reach the socket in it
  const sockPath = path.join(dir, 'loader.sock');
  const cfg = path.join(dir, 'telegen.yaml');
  fs.writeFileSync(cfg, `tracers:\n  profile: { enabled: false }\nsecurity:\n  privilege_separation: true\n  loader_socket: ${sockPath}\n`);
  const agent = await startAgent({ config: cfg });
  let srv: Awaited<ReturnType<typeof startServer>> | undefined;
  let tls: Awaited<ReturnType<typeof startServer>> | undefined;
  const pki = makePki();
  try {
    const loaderPid = agent.proc.pid!;
    const lines = () => agent.logs.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const started = lines().find((l) => l.msg === 'worker started');
    assert.ok(started, agent.logs.join('').slice(-3000));
    const workerPid = started.worker as number;
    const loaded = lines().find((l) => l.msg === "socket tracer loaded; the worker drains it");
    assert.ok(loaded, 'the loader loaded the socket tracer');
    const progIds = loaded.progIds as number[];
    assert.ok(progIds.length > 0);

    // The worker: a child of the loader, not root, no capability in any set, no_new_privs.
    const w = status(workerPid);
    assert.equal(w.PPid, String(loaderPid));
    for (const id of w.Uid.split(/\s+/).concat(w.Gid.split(/\s+/))) assert.notEqual(id, '0', `worker Uid ${w.Uid} Gid ${w.Gid}`);
    assert.equal(w.Groups, '', 'supplementary groups dropped');
    // CapBnd too: the test runs as full root, so the loader holds CAP_SETPCAP to empty it.
    for (const k of ['CapEff', 'CapPrm', 'CapInh', 'CapAmb', 'CapBnd']) assert.equal(w[k], '0000000000000000', `worker ${k}`);
    assert.equal(w.NoNewPrivs, '1');
    // It, not the loader, serves the API; the loader listens on no inet socket.
    const st = await (await agent.api('/api/status')).json() as { pid: number; tracers: Array<{ name: string; ok: boolean; detail: string }> };
    assert.equal(st.pid, workerPid);
    assert.equal(st.tracers.find((x) => x.name === 'socket')?.ok, true, JSON.stringify(st.tracers));
    const inodes = fs.readdirSync(`/proc/${loaderPid}/fd`).map((f) => { try { return fs.readlinkSync(`/proc/${loaderPid}/fd/${f}`); } catch { return ''; } });
    const tcp = fs.readFileSync('/proc/net/tcp', 'utf8') + fs.readFileSync('/proc/net/tcp6', 'utf8');
    for (const l of inodes) {
      const m = /^socket:\[(\d+)\]$/.exec(l);
      if (m) assert.ok(!tcp.split('\n').some((row) => row.trim().split(/\s+/)[9] === m[1]), 'loader holds no TCP socket');
    }

    // HTTP to a local node server, by curl, is traced to spans through the worker's ring.
    srv = await startServer(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0']);
    const port = srv.port;
    for (let i = 0; i < 5; i++) assert.match(curl(['-sS', `http://127.0.0.1:${port}/users/${i}`]), new RegExp(`"id":"${i}"`));
    const spans = await waitFor(() => {
      const s = agent.spans().filter((x) => x.kind === 2 && x.attributes['server.port'] === port);
      return s.length >= 5 ? s : undefined;
    }, 60_000, 300);
    assert.deepEqual(spans.map((s) => s.attributes['url.path']).sort(), [0, 1, 2, 3, 4].map((i) => `/users/${i}`));
    assert.equal(spans[0].attributes['http.response.status_code'], 200);

    // HTTPS: the loader runs the TLS tracer (uprobes on curl's libssl.so.3 and node's own OpenSSL),
    // its plaintext records share the ring, and the worker decodes them.
    assert.equal(st.tracers.find((x) => x.name === 'tls')?.ok, true, JSON.stringify(st.tracers));
    fs.writeFileSync(path.join(pki.dir, 'server.js'), HTTPS_SERVER_JS);
    tls = await startServer(process.execPath, [path.join(pki.dir, 'server.js'), pki.key, pki.cert]);
    const tport = tls.port;
    // the loader hooks a binary started after it on its next /proc scan: retry until it has
    const tspans = await waitFor(() => {
      curl(['--cacert', pki.ca, `https://localhost:${tport}/secret/1`]);
      const s = agent.spans().filter((x) => x.attributes['url.path'] === '/secret/1' && (x.attributes['server.port'] === tport));
      return s.some((x) => x.kind === 2) && s.some((x) => x.kind === 3) ? s : undefined;
    }, 60_000, 1000);
    assert.equal(tspans.find((x) => x.kind === 3)?.resource['process.executable.name'], 'curl');

    // The loader's request protocol, spoken by hand (root gets a request-only session, no fds).
    const s = await loaderSession(sockPath);
    assert.equal(s.hello.role, 'admin');
    assert.equal((await s.ask({ op: 'ping', id: 1 })).ok, true);
    const refused = async (body: string | object, error: string, reason: RegExp) => {
      const r = await s.ask(body);
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.equal(r.error, error, JSON.stringify(r));
      assert.match(String(r.reason), reason);
    };
    const libssl = '/usr/lib/x86_64-linux-gnu/libssl.so.3';
    const ok = { op: 'attach_uprobe', id: 2, tracer: 'tls', pid: srv.proc.pid!, library: libssl, symbols: ['SSL_read'] };
    await refused('{"op": "ping", ', 'malformed', /not JSON/);
    await refused({ op: 'load_program', id: 3, path: '/tmp/x.o' }, 'malformed', /op/);
    await refused({ ...ok, extra: true }, 'malformed', /extra|Unrecognized/i);
    await refused({ ...ok, pid: -1 }, 'malformed', /pid/);
    await refused({ ...ok, library: 'libssl.so.3' }, 'malformed', /absolute/);
    await refused({ ...ok, tracer: 'xdp' }, 'refused', /tracer "xdp" may not request uprobes/);
    await refused({ ...ok, pid: 0x3ffffff0 }, 'refused', /does not exist/);
    await refused({ ...ok, pid: loaderPid }, 'refused', /telegen itself/);
    await refused({ ...ok, pid: workerPid }, 'refused', /telegen itself/);
    await refused({ ...ok, library: '/usr/lib/x86_64-linux-gnu/../x86_64-linux-gnu/libssl.so.3' }, 'refused', /not normalized/);
    await refused({ ...ok, library: '/etc/shadow' }, 'refused', /not one tracer "tls" may hook/);
    await refused({ ...ok, symbols: ['system'] }, 'refused', /symbol\(s\) system not allowed/);
    // node links OpenSSL statically: the server has no libssl mapped, so it is no target.
    await refused(ok, 'refused', /has no mapping of/);
    // A length past the limit ends the session; the loader carries on.
    s.end();
    const big = await loaderSession(sockPath);
    const r = await big.ask(Buffer.alloc(70 * 1024, 0x20));
    assert.equal(r.error, 'malformed');
    assert.match(String(r.reason), /exceeds/);
    await waitFor(() => big.closed(), 5_000, 20);
    // Only root and the worker may talk to it: another uid is turned away.
    const other = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '-e', `
      const s = require('net').connect(${JSON.stringify(sockPath)}); let b = Buffer.alloc(0);
      s.on('data', (d) => { b = Buffer.concat([b, d]); }); s.on('close', () => { console.log(b.subarray(4).toString()); });
      s.on('connect', () => s.write(Buffer.from([0, 0, 0, 2, 123, 125])));`], { encoding: 'utf8', timeout: 15_000 });
    assert.match(other.stdout, /"error":"refused".*may not use the loader/, other.stderr);
    const again = await loaderSession(sockPath);
    assert.equal((await again.ask({ op: 'ping', id: 9 })).ok, true, 'the loader still serves');
    again.end();

    // SIGTERM to the top process: the worker flushes and exits, then the loader, both cleanly.
    assert.equal(await agent.stop(), 0, agent.logs.join('').slice(-3000));
    await waitFor(() => !fs.existsSync(`/proc/${workerPid}`), 10_000, 100);
    assert.ok(lines().some((l) => l.pid === workerPid && l.msg === 'telegen stopped'), 'the worker ran its shutdown');
    const left = progIds.filter((id) => spawnSync('bpftool', ['prog', 'show', 'id', String(id)]).status === 0);
    assert.deepEqual(left, [], 'no program of this agent is left loaded');
    assert.ok(!fs.existsSync(sockPath), 'socket removed');
  } finally {
    await srv?.stop();
    await tls?.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
    if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
});
