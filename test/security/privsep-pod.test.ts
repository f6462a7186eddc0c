// Privilege separation as the DaemonSet runs it (deploy/kustomize/base): `telegen loader` and
// `telegen worker` are two processes started by someone else — here as the container runtime
// would: the loader as uid 0 with only the seed's capabilities (capsh), the worker as uid 65534
// with every capability set empty and no_new_privs (setpriv) — sharing one Unix socket. Real
// BPF, real HTTP and HTTPS servers, curl; a TLS server started after the agent is hooked through
// the worker's attach requests (the loader runs no /proc rescan of its own under the split).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, execFileSync, ChildProcess } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startServer, waitFor, curl, freePort, readRotatedSpans } from '../helpers/agent';
import { procStatus, loaderSession } from '../helpers/privsep';
import { makePki } from '../tls/tls-helpers';
import { Discovery } from '../../host/src/discovery';

const SEED = ['cap_bpf', 'cap_perfmon', 'cap_sys_ptrace', 'cap_net_admin', 'cap_dac_read_search'];
const CAP_BITS: Record<string, number> = { cap_net_admin: 12, cap_sys_ptrace: 19, cap_dac_read_search: 2, cap_perfmon: 38, cap_bpf: 39 };

const HTTPS_SERVER_JS = `
const https = require('https'); const fs = require('fs');
const srv = https.createServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) }, (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }); res.end('late ' + req.url);
});
srv.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port));
`;

function logged(proc: ChildProcess, into: string[]): void {
  proc.stdout!.on('data', (d) => into.push(String(d)));
  proc.stderr!.on('data', (d) => into.push(String(d)));
}

function jsonLines(logs: string[]): Array<Record<string, unknown>> {
  return logs.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } });
}

function stopped(proc: ChildProcess, ms = 30_000): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
    const t = setTimeout(() => proc.kill('SIGKILL'), ms);
    proc.once('exit', (code) => { clearTimeout(t); resolve(code); });
  });
}

test('loader and worker as two processes (the pod): worker uid 65534 with no capabilities traces HTTP and HTTPS; late TLS servers are hooked on request', { timeout: 170_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-pod-'));
  fs.chmodSync(dir, 0o755);
  // The pod's two emptyDirs: the socket's (both containers) and the worker's data.
  const runDir = path.join(dir, 'run');
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(runDir, { mode: 0o755 });
  fs.mkdirSync(dataDir, { mode: 0o755 });
  fs.chownSync(dataDir, 65534, 65534);
  const sock = path.join(runDir, 'loader.sock');
  const port = await freePort();
  const cfg = path.join(dir, 'telegen.yaml');
  fs.writeFileSync(cfg, `data_dir: ${dataDir}\napi: { listen: "127.0.0.1:${port}" }\ntracers:\n  profile: { enabled: false }\n`);
  const bounding = /^Bounding set =(.*)$/m.exec(execFileSync('capsh', ['--print'], { encoding: 'utf8' }))?.[1].split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  const cli = path.join(repoRoot, 'bin', 'telegen');
  const env = { ...process.env, TELEGEN_OTLP_FLUSH_INTERVAL_MS: '200' };
  const loaderLogs: string[] = [];
  const workerLogs: string[] = [];
  const loader = spawn('capsh', [`--drop=${bounding.filter((c) => !SEED.includes(c)).join(',')}`, '--', '-c',
    `exec ${process.execPath} ${cli} loader --socket ${sock} --config ${cfg}`], { stdio: ['ignore', 'pipe', 'pipe'], env });
  logged(loader, loaderLogs);
  const worker = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--',
    process.execPath, cli, 'worker', '--socket', sock], { stdio: ['ignore', 'pipe', 'pipe'], env });
  logged(worker, workerLogs);
  const both = () => `loader: ${loaderLogs.join('').slice(-2500)}\nworker: ${workerLogs.join('').slice(-2500)}`;
  const pki = makePki();
  // A cgroup (v1 pids hierarchy here; v2 where it is the only one) named as containerd names one.
  const containerId = Array.from({ length: 64 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
  const cgBase = fs.existsSync('/sys/fs/cgroup/pids') ? '/sys/fs/cgroup/pids' : '/sys/fs/cgroup';
  const cgParent = path.join(cgBase, `telegen-test-${process.pid}`);
  const containerCg = path.join(cgParent, `cri-containerd-${containerId}.scope`);
  let http: Awaited<ReturnType<typeof startServer>> | undefined;
  let tls: Awaited<ReturnType<typeof startServer>> | undefined;
  let nsServer: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await waitFor(async () => {
      if (loader.exitCode !== null || worker.exitCode !== null) throw new Error(`exited: loader ${loader.exitCode} worker ${worker.exitCode}\n${both()}`);
      try { return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok; } catch { return false; }
    }, 120_000, 200).catch((e) => { throw new Error(`${(e as Error).message}\n${both()}`); });

    // The worker: exactly what the runtime started, uid 65534 and no capability anywhere.
    const w = procStatus(worker.pid!);
    assert.deepEqual(w.Uid.split(/\s+/), ['65534', '65534', '65534', '65534']);
    assert.deepEqual(w.Gid.split(/\s+/), ['65534', '65534', '65534', '65534']);
    for (const k of ['CapEff', 'CapPrm', 'CapInh', 'CapAmb', 'CapBnd']) assert.equal(w[k], '0000000000000000', `worker ${k}`);
    assert.equal(w.NoNewPrivs, '1');
    const st = await (await fetch(`http://127.0.0.1:${port}/api/status`)).json() as { pid: number; tracers: Array<{ name: string; ok: boolean; detail: string }> };
    assert.equal(st.pid, worker.pid, 'the worker serves the API');
    assert.equal(st.tracers.find((x) => x.name === 'socket')?.ok, true, JSON.stringify(st.tracers));
    assert.equal(st.tracers.find((x) => x.name === 'tls')?.ok, true, JSON.stringify(st.tracers));
    // The loader: uid 0, never more than the seed's list, and after start-up not NET_ADMIN.
    const l = procStatus(loader.pid!);
    const eff = BigInt(`0x${l.CapEff}`);
    const seedMask = SEED.reduce((m, c) => m | (1n << BigInt(CAP_BITS[c])), 0n);
    assert.equal(eff & ~seedMask, 0n, `loader CapEff ${l.CapEff} within the seed list`);
    assert.ok(eff & (1n << 39n), 'loader keeps CAP_BPF');
    assert.equal(eff & (1n << 12n), 0n, 'NET_ADMIN dropped after start-up');
    const connected = jsonLines(loaderLogs).find((x) => x.msg === 'worker connected');
    assert.equal(connected?.worker, worker.pid, 'the loader recognised the worker by its uid and took its pid');

    // HTTP end to end: curl → node server, spans exported by the worker.
    // The server runs as a container would: in a cgroup whose path names a container id, with
    // OTEL_SERVICE_NAME in its environment (which only root may read).
    fs.mkdirSync(containerCg, { recursive: true });
    http = await startServer('sh', ['-c', `echo $$ > ${containerCg}/cgroup.procs && OTEL_SERVICE_NAME=pod-users exec ${process.execPath} ${path.join(repoRoot, 'test', 'fixtures', 'http-server.js')} 0`]);
    for (let i = 0; i < 3; i++) assert.match(curl([`http://127.0.0.1:${http.port}/users/${i}`]), new RegExp(`"id":"${i}"`));
    const spans = () => readRotatedSpans(path.join(dataDir, 'traces.jsonl'));
    const hs = await waitFor(() => {
      const s = spans().filter((x) => x.kind === 2 && x.attributes['server.port'] === http!.port);
      return s.length >= 3 ? s : undefined;
    }, 60_000, 300).catch(() => { throw new Error(`no HTTP spans\n${both()}`); });
    assert.deepEqual(hs.map((s) => s.attributes['url.path']).sort(), ['/users/0', '/users/1', '/users/2']);

    // Enrichment in the worker: what it reads itself (cmdline, status, cgroup) and what the loader
    // describes (exe link, OTEL_SERVICE_NAME, runtime) — the resource the single-process agent
    // gives the same process (a Discovery run here, as root). The loader's answer may come after
    // the first span; the next spans carry it.
    assert.equal(st.tracers.find((x) => x.name === 'discovery')?.ok, true, JSON.stringify(st.tracers));
    const enriched = await waitFor(() => {
      curl([`http://127.0.0.1:${http!.port}/users/9`]);
      return spans().find((x) => x.kind === 2 && x.attributes['server.port'] === http!.port && x.resource['service.name'] === 'pod-users');
    }, 30_000, 500).catch(() => { throw new Error(`no span with the loader-described service.name\n${both()}`); });
    const root = new Discovery({ kubernetes: { enabled: 'false' } } as never).resource(http.proc.pid!);
    const keys = ['service.name', 'process.pid', 'process.executable.name', 'process.executable.path', 'process.command_line', 'process.owner', 'process.runtime.name', 'container.id', 'container.runtime'];
    const pick = (r: Record<string, unknown>) => Object.fromEntries(keys.map((k) => [k, r[k]]));
    assert.deepEqual(pick(enriched.resource), pick(root));
    assert.equal(enriched.resource['container.id'], containerId);
    assert.equal(enriched.resource['process.executable.path'], process.execPath);
    assert.match(String(enriched.resource['process.command_line']), /http-server\.js 0$/);
    // Enriching changed nothing about who the worker is.
    const w2 = procStatus(worker.pid!);
    assert.equal(w2.Uid.split(/\s+/)[1], '65534');
    assert.equal(w2.CapEff, '0000000000000000');
    // The TCP tracer too: loaded by the loader, its ring and counters read by the worker.
    assert.equal(st.tracers.find((x) => x.name === 'tcp')?.ok, true, JSON.stringify(st.tracers));
    const handled = async () => Number(/^telegen_tracer_events_handled_total\{tracer="tcp"\} (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1] ?? 0);
    await waitFor(async () => (await handled()) >= 3, 30_000, 300).catch(() => { throw new Error(`no TCP events reached the worker\n${both()}`); });

    // HTTPS from a binary first run now (a copy of node: a new inode the start-up scan never
    // saw, with OpenSSL linked in). Its first accepted connection tells the worker about it; the
    // worker asks list_targets/attach_uprobe; the loader checks and attaches.
    const nodeCopy = path.join(pki.dir, 'node-late');
    fs.copyFileSync(process.execPath, nodeCopy);
    fs.chmodSync(nodeCopy, 0o755);
    fs.writeFileSync(path.join(pki.dir, 'server.js'), HTTPS_SERVER_JS);
    tls = await startServer(nodeCopy, [path.join(pki.dir, 'server.js'), pki.key, pki.cert]);
    const tport = tls.port;
    const ts = await waitFor(() => {
      curl(['--cacert', pki.ca, `https://localhost:${tport}/late/1`]);
      const s = spans().filter((x) => x.kind === 2 && x.attributes['url.path'] === '/late/1' && x.attributes['process.pid'] === tls!.proc.pid);
      return s.length ? s : undefined;
    }, 60_000, 1000).catch(() => { throw new Error(`no HTTPS server span from the late binary\n${both()}`); });
    assert.equal(ts[0].attributes['http.response.status_code'], 200);
    const attached = jsonLines(loaderLogs).find((x) => x.msg === 'uprobes attached on request' && String(x.file).endsWith('node-late'));
    assert.ok(attached, `the loader attached node-late on the worker's request\n${both()}`);
    assert.equal((attached.peer as { pid: number }).pid, worker.pid, 'asked by the worker');

    // A server in its own mount namespace, as in a container: the path it runs exists only in its
    // view (a bind mount), so the loader attaches through /proc/PID/root.
    const src = path.join(pki.dir, 'ns-src');
    const view = path.join(pki.dir, 'ns-view');
    fs.mkdirSync(src);
    fs.mkdirSync(view);
    fs.copyFileSync(process.execPath, path.join(src, 'node-ns'));
    fs.chmodSync(path.join(src, 'node-ns'), 0o755);
    nsServer = await startServer('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
      `mount --bind ${src} ${view} && exec ${view}/node-ns ${path.join(pki.dir, 'server.js')} ${pki.key} ${pki.cert}`]);
    const nsPort = nsServer.port;
    await waitFor(() => {
      curl(['--cacert', pki.ca, `https://localhost:${nsPort}/ns/1`]);
      return spans().some((x) => x.kind === 2 && x.attributes['url.path'] === '/ns/1' && x.attributes['process.pid'] === nsServer!.proc.pid);
    }, 60_000, 1000).catch(() => { throw new Error(`no HTTPS server span from the other mount namespace\n${both()}`); });
    const viaRoot = jsonLines(loaderLogs).find((x) => x.msg === 'uprobes attached on request' && String(x.file).endsWith('/node-ns'));
    assert.equal(viaRoot?.file, `/proc/${nsServer.proc.pid}/root${view}/node-ns`, 'attached through the process\'s root');

    // The same protocol by hand (root: request-only session): the accepted request and the
    // checks around it.
    const s = await loaderSession(sock);
    assert.equal(s.hello.role, 'admin');
    const listed = await s.ask({ op: 'list_targets', id: 1, tracer: 'tls', pid: tls.proc.pid });
    assert.equal(listed.ok, true, JSON.stringify(listed));
    assert.ok((listed.files as Array<{ path: string }>).some((f) => f.path === nodeCopy), JSON.stringify(listed));
    const again = await s.ask({ op: 'attach_uprobe', id: 2, tracer: 'tls', pid: tls.proc.pid, library: nodeCopy, symbols: ['SSL_read', 'SSL_write'] });
    assert.equal(again.ok, true, JSON.stringify(again));
    assert.equal(again.already, true, 'hooked once per inode');
    // The executable of one process is not a target through another process.
    // describe_process: the fixed fields, nothing else; never telegen's own processes.
    const desc = await s.ask({ op: 'describe_process', id: 5, pid: http.proc.pid });
    assert.equal(desc.ok, true, JSON.stringify(desc));
    assert.deepEqual(Object.keys(desc).sort(), ['env', 'executablePath', 'id', 'ok', 'runtime']);
    assert.deepEqual(desc.env, { OTEL_SERVICE_NAME: 'pod-users' }, 'no environment variable beyond OTEL_*');
    const self = await s.ask({ op: 'describe_process', id: 6, pid: worker.pid });
    assert.equal(self.ok, false);
    assert.match(String(self.reason), /telegen itself/);
    const extra = await s.ask({ op: 'describe_process', id: 7, pid: http.proc.pid, file: '/etc/shadow' });
    assert.equal(extra.error, 'malformed');
    const other = await s.ask({ op: 'attach_uprobe', id: 3, tracer: 'tls', pid: http.proc.pid, library: nodeCopy, symbols: ['SSL_read'] });
    assert.equal(other.ok, false);
    assert.match(String(other.reason), /not one tracer "tls" may hook/);
    // A symlink to the executable is refused: no path is followed.
    const link = path.join(pki.dir, 'libssl.so.3');
    fs.symlinkSync(nodeCopy, link);
    const viaLink = await s.ask({ op: 'attach_uprobe', id: 4, tracer: 'tls', pid: tls.proc.pid, library: link, symbols: ['SSL_read'] });
    assert.equal(viaLink.ok, false);
    assert.match(String(viaLink.reason), /has no mapping of/);
    // Rate limit: a flood of requests on one session is cut off, the loader keeps serving.
    const flood = await Promise.all(Array.from({ length: 100 }, (_, i) => s.ask({ op: 'ping', id: 100 + i })));
    const limited = flood.filter((r) => r.ok === false);
    assert.ok(limited.length > 0, 'some requests hit the rate limit');
    assert.match(String(limited[0].reason), /^rate limit/);
    s.end();
    const fresh = await loaderSession(sock);
    assert.equal((await fresh.ask({ op: 'ping', id: 1 })).ok, true);
    fresh.end();

    // SIGTERM to both, as the kubelet does: the worker flushes, both exit 0.
    loader.kill('SIGTERM');
    worker.kill('SIGTERM');
    assert.equal(await stopped(worker), 0, both());
    assert.equal(await stopped(loader), 0, both());
    assert.ok(!fs.existsSync(sock), 'socket removed');
  } finally {
    await http?.stop();
    await tls?.stop();
    await nsServer?.stop();
    for (const d of [containerCg, cgParent]) try { fs.rmdirSync(d); } catch { /* never made */ }
    for (const p of [worker, loader]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    fs.rmSync(pki.dir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('telegen worker refuses to run as root', { timeout: 30_000 }, () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'worker', '--socket', '/nonexistent/loader.sock'], { encoding: 'utf8', timeout: 25_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /must not run as root/);
});

