// Issue 8 item 5: with every kernel tracer loaded, /metrics carries the fill of every hash/LRU map
// each object declares (the list comes from the objects' BTF, not from this file) and every ring's
// drop counter; after real traffic (HTTP over lo, files held open, a process exec'd) the maps that
// hold state report a non-zero count no larger than their capacity, sampled from the kernel's own
// element counters (bpf_map iterator), not from key walks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, execFileSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer, curl, waitFor } from '../helpers/agent';
import { objectMaps, tracerConfig } from './helpers';

// BPF_MAP_TYPE_{HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH, HASH_OF_MAPS}; RINGBUF.
const FILL_TYPES = new Set([1, 5, 9, 10, 13]);
const RINGBUF = 27;
// tracer name on /metrics → object file stem.
const STEMS: Record<string, string> = { socket: 'socket', tls: 'tls', go: 'go_tls', tcp: 'tcp', xdp: 'xdp', fileio: 'fileio', security: 'security', logs: 'logs', profile: 'profile' };
// The tracers whose maps hold state that outlives a syscall in this test: a held-open connection
// (socket, tcp, logs' selected server pid), a flow on lo, files held open, CPU samples.
const STATEFUL = ['socket', 'tcp', 'xdp', 'fileio', 'logs', 'profile'];

function series(prom: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${name}\\{map="([^"]+)",tracer="([^"]+)"\\} (\\d+)$`, 'gm');
  for (const m of prom.matchAll(re)) out.set(`${m[2]}/${m[1]}`, Number(m[3]));
  return out;
}

test('every tracer map reports fill and capacity, every ring its drops, after real traffic', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent({
    config: tracerConfig({
      socket: { enabled: true }, tls: { enabled: true }, go: { enabled: true }, tcp: { enabled: true, poll_ms: 50 },
      xdp: { enabled: true, interfaces: ['lo'], flow_max: 4096 }, fileio: { enabled: true }, security: { enabled: true },
      logs: { enabled: true }, profile: { enabled: true },
    }),
  });
  const server = await startServer(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-mapfill-'));
  // Holds a keep-alive connection and three files open while the maps are sampled.
  const holder = spawn(process.execPath, ['-e', `
    const fs = require('fs'), http = require('http');
    const fds = [0, 1, 2].map((i) => fs.openSync(${JSON.stringify(dir)} + '/f' + i, 'w'));
    fds.forEach((fd) => fs.writeSync(fd, 'x'.repeat(100)));
    const agent = new http.Agent({ keepAlive: true });
    http.get({ host: '127.0.0.1', port: ${server.port}, path: '/hello', agent }, (r) => { r.resume(); r.on('end', () => console.log('ready')); });
    setTimeout(() => {}, 120000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((res) => holder.stdout!.once('data', () => res()));
    for (let i = 0; i < 5; i++) curl([`http://127.0.0.1:${server.port}/users/${i}`]);
    execFileSync('/bin/true');

    const st = await (await agent.api('/api/status')).json() as { tracers: Array<{ name: string; ok: boolean; detail: string }> };
    const running = st.tracers.filter((x) => x.ok && STEMS[x.name]).map((x) => x.name);
    assert.deepEqual([...running].sort(), Object.keys(STEMS).sort(), `every kernel tracer runs: ${JSON.stringify(st.tracers)}`);
    const maps = Object.fromEntries(running.map((tr) => [tr, objectMaps(STEMS[tr])]));
    const socketMaps = new Set(maps.socket.map((m) => m.name));

    let prom = '';
    const missing = (p: string) => {
      const entries = series(p, 'telegen_bpf_map_entries');
      const out: string[] = [];
      for (const tr of running) {
        for (const m of maps[tr].filter((x) => FILL_TYPES.has(x.type))) {
          // tls and go write into the socket tracer's own tg_conns (the fd is shared): reported once, under socket.
          const owner = tr !== 'socket' && socketMaps.has(m.name) ? 'socket' : tr;
          if (!entries.has(`${owner}/${m.name}`)) out.push(`${owner}/${m.name}`);
        }
        if (STATEFUL.includes(tr) && ![...entries].some(([k, v]) => k.startsWith(`${tr}/`) && v > 0)) out.push(`${tr}: all maps empty`);
      }
      return out;
    };
    await waitFor(async () => {
      prom = await (await agent.api('/metrics')).text();
      return missing(prom).length === 0;
    }, 45_000).catch(() => assert.fail(`not on /metrics: ${missing(prom).join(', ')}`));

    const entries = series(prom, 'telegen_bpf_map_entries');
    const capacity = series(prom, 'telegen_bpf_map_capacity');
    for (const [k, v] of entries) {
      const cap = capacity.get(k);
      assert.ok(cap !== undefined && cap > 0, `${k} has a capacity`);
      assert.ok(v >= 0 && v <= cap, `${k}: ${v} entries within capacity ${cap}`);
    }
    assert.ok((entries.get('xdp/tg_xdp_flows') ?? 0) >= 2, 'the HTTP traffic on lo made flows (both directions)');
    assert.ok((entries.get('fileio/tg_fileio_files') ?? 0) >= 3, 'the three files held open are tracked');
    assert.doesNotMatch(prom, /telegen_bpf_map_fill_walked/, 'counts come from the kernel element counters');
    // Every tracer with a ring of its own reports what it dropped there.
    for (const tr of running) {
      if (!maps[tr].some((m) => m.type === RINGBUF) || tr === 'profile') continue; // profile: telegen_profile_* counters
      assert.match(prom, new RegExp(`^telegen_bpf_\\w*ring_full_total\\{tracer="${tr}"\\} \\d+$`, 'm'), `${tr} ring drops on /metrics`);
    }

    // Kernel memory of the maps the agent holds, against bpftool's bytes_memlock of the same map ids.
    const ids = new Set<number>();
    for (const fd of fs.readdirSync(`/proc/${agent.proc.pid}/fd`)) {
      try {
        if (fs.readlinkSync(`/proc/${agent.proc.pid}/fd/${fd}`) !== 'anon_inode:bpf-map') continue;
        ids.add(Number(/^map_id:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${agent.proc.pid}/fdinfo/${fd}`, 'utf8'))![1]));
      } catch { /* closed meanwhile */ }
    }
    // Maps allocated per element (the file I/O tracer's directory names, the LRUs) grow while
    // the agent runs: bpftool is read before and after /metrics, and they must agree when the
    // maps did not change in between.
    type Shown = Array<{ id: number; name?: string; bytes_memlock: number; max_entries: number }>;
    const held = (): Shown => (JSON.parse(execFileSync('bpftool', ['map', 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as Shown).filter((m) => ids.has(m.id));
    const sum = (maps: Shown) => maps.reduce((a, m) => a + m.bytes_memlock, 0);
    let mine = held();
    let want = sum(mine);
    let got = 0;
    await waitFor(async () => {
      const before = sum(held());
      got = Number(/^telegen_bpf_map_memory_bytes (\d+)$/m.exec(await (await agent.api('/metrics')).text())?.[1] ?? NaN);
      mine = held();
      want = sum(mine);
      return before === want && got === want;
    }, 15_000).catch(() => assert.fail(`telegen_bpf_map_memory_bytes ${got}, bpftool ${want}`));
    t.diagnostic(`BPF maps held: ${mine.length}, ${(want / 2 ** 20).toFixed(1)} MiB of kernel memory`);
    // The per-CPU scratch arrays are sized to the possible CPUs, not the 256 declared.
    const possible = fs.readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim().split(',')
      .reduce((a, r) => { const [lo, hi] = r.split('-').map(Number); return a + (hi === undefined ? 1 : hi - lo + 1); }, 0);
    for (const name of ['tls_scratch', 'go_scratch', 'tg_scratch']) {
      const m = mine.find((x) => x.name === name);
      assert.ok(m, `${name} held by the agent`);
      assert.equal(m.max_entries, possible, `${name} has one slot per possible CPU`);
    }
  } finally {
    holder.kill('SIGKILL');
    await server.stop();
    await agent.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
