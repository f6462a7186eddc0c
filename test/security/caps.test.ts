// Least capabilities: the agent started with only the seed's capabilities (no SYS_ADMIN, no
// DAC_OVERRIDE, …; what the DaemonSet grants) attaches its tracers with those, then drops what
// run time does not need (NET_ADMIN: XDP/tc attach only at start). Without CAP_SETPCAP (not in the
// seed list) the bounding set cannot shrink; no_new_privs keeps an exec from regaining anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { bpfUnavailable, freePort } from '../helpers/agent';

// capability bit numbers (linux/capability.h)
const SEED: Record<string, number> = { cap_dac_read_search: 2, cap_net_admin: 12, cap_sys_ptrace: 19, cap_perfmon: 38, cap_bpf: 39 };
const SEED_MASK = Object.values(SEED).reduce((m, b) => m | (1n << BigInt(b)), 0n);
const RUNTIME_MASK = SEED_MASK & ~(1n << BigInt(SEED.cap_net_admin));

function capLine(pid: number, which: string): bigint {
  const m = new RegExp(`^${which}:\\s*([0-9a-f]+)`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `${which} in /proc/${pid}/status`);
  return BigInt(`0x${m[1]}`);
}

test('agent under the seed capability set: the socket tracer attaches; after start-up CapEff is exactly BPF, PERFMON, SYS_PTRACE, DAC_READ_SEARCH', { timeout: 120_000 }, async (t) => {
  if (process.getuid?.() !== 0 || !fs.existsSync('/usr/sbin/capsh')) {
    if (process.env.CI === 'true') assert.fail('needs root and capsh (libcap2-bin)');
    t.skip('needs root and capsh');
    return;
  }
  const bounding = /^Bounding set =(.*)$/m.exec(execFileSync('capsh', ['--print'], { encoding: 'utf8' }))?.[1].split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  const drop = bounding.filter((c) => !(c in SEED));
  assert.ok(drop.includes('cap_sys_admin'), 'SYS_ADMIN is among the dropped');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-caps-'));
  const port = await freePort();
  const logs: string[] = [];
  // capsh removes the rest from the bounding set and execs: the agent (uid 0) starts with the
  // seed list only, as in the DaemonSet's securityContext.
  const proc = spawn('capsh', [`--drop=${drop.join(',')}`, '--', '-c',
    `exec ${process.execPath} ${path.join(repoRoot, 'bin', 'telegen')} run --data-dir ${dataDir} --api-listen 127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d) => logs.push(String(d)));
  proc.stderr!.on('data', (d) => logs.push(String(d)));
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`agent exited ${proc.exitCode}: ${logs.join('')}`);
      try { if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break; } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error(`agent not ready: ${logs.join('')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const status = await (await fetch(`http://127.0.0.1:${port}/api/status`)).json() as { pid: number; tracers: Array<{ name: string; ok: boolean; detail: string }> };
    assert.equal(status.pid, proc.pid, 'capsh exec\'d into the agent');
    assert.equal(capLine(status.pid, 'CapEff'), RUNTIME_MASK, 'effective set: the seed list less NET_ADMIN');
    assert.equal(capLine(status.pid, 'CapPrm'), RUNTIME_MASK, 'and it cannot be raised again');
    assert.equal(capLine(status.pid, 'CapBnd'), SEED_MASK, 'bounding set as the runtime gave it (no CAP_SETPCAP to shrink it)');
    assert.equal(capLine(status.pid, 'CapAmb'), 0n);
    assert.match(fs.readFileSync(`/proc/${status.pid}/status`, 'utf8'), /^NoNewPrivs:\s*1$/m, 'no exec regains a capability');
    const socket = status.tracers.find((x) => x.name === 'socket');
    const why = bpfUnavailable();
    if (why) {
      if (process.env.CI === 'true') assert.fail(`socket tracer check cannot run under CI: ${why}`);
      t.diagnostic(`socket tracer not checked: ${why}`);
    } else {
      assert.ok(socket?.ok, `socket tracer attaches without SYS_ADMIN: ${socket?.detail}`);
    }
  } finally {
    if (proc.exitCode === null) {
      await new Promise<void>((resolve) => { const k = setTimeout(() => proc.kill('SIGKILL'), 20_000); proc.once('exit', () => { clearTimeout(k); resolve(); }); proc.kill('SIGTERM'); });
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
