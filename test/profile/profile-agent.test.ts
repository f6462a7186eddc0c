// The CPU profiler on real programs: a C program with known hot functions (symbols kept and
// stripped), a Node program with --perf-basic-prof, a Python busy loop, a syscall-heavy loop
// for kernel frames; pprof output decoded with pprof-format; the agent's API and OTLP file.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import { Profile } from 'pprof-format';
import { requireBpf, startAgent, waitFor } from '../helpers/agent';
import { Profiler } from '../../host/src/profile/profiler';
import { profileSchema } from '../../host/src/profile/config';
import { IntervalProfile, inclusiveShare, ProfileSample } from '../../host/src/profile/model';
import { readElfFile, fileOffsetToVaddr, lookupSymbol } from '../../host/src/profile/elf';

const HOT_C = `
#include <stdlib.h>
#include <unistd.h>
volatile unsigned long sink;
__attribute__((noinline)) void burn_hot(void) { for (unsigned long i = 0; i < 4000000; i++) sink += i * 7; }
__attribute__((noinline)) void burn_cold(void) { for (unsigned long i = 0; i < 1000000; i++) sink += i * 3; }
int main(void) { for (;;) { burn_hot(); burn_cold(); } }
`;
const SYSCALL_C = `
#include <unistd.h>
#include <fcntl.h>
int main(void) { char b[64] = {0}; int fd = open("/dev/null", O_WRONLY); for (;;) { for (int i = 0; i < 1000; i++) write(fd, b, sizeof b); getppid(); } }
`;

let dir = '';
const kids: ChildProcess[] = [];

before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-profile-')); });
after(() => {
  for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

function build(name: string, src: string, strip = false): string {
  const c = path.join(dir, `${name}.c`);
  const out = path.join(dir, name);
  fs.writeFileSync(c, src);
  execFileSync('gcc', ['-O0', '-g', '-fno-omit-frame-pointer', '-o', out, c]);
  if (strip) execFileSync('strip', ['--strip-all', out]);
  return out;
}

function run(cmd: string, args: string[], env?: Record<string, string>): ChildProcess {
  const p = spawn(cmd, args, { stdio: 'ignore', env: { ...process.env, ...env } });
  kids.push(p);
  return p;
}

/** Profiles one pid for `ms` and returns the interval (drained while it still runs). */
async function profileOf(pid: number, ms: number, dataDir = dir): Promise<{ iv: IntervalProfile; p: Profiler }> {
  const cfg = profileSchema.parse({ enabled: true, frequency_hz: 499, interval_ms: 600_000, pids: [pid], pprof: { enabled: true } });
  const p = new Profiler({ cfg, dataDir });
  try {
    p.drainNow(); // drops whatever was counted before the target was set
    await new Promise((r) => setTimeout(r, ms));
    const iv = p.drainNow();
    return { iv, p };
  } finally {
    p.native.close();
  }
}

const total = (ss: ProfileSample[]) => ss.reduce((a, s) => a + s.count, 0);
const leafShare = (ss: ProfileSample[], re: RegExp) => {
  const all = total(ss);
  const hit = ss.filter((s) => s.stack.length && re.test(s.stack[s.stack.length - 1].name)).reduce((a, s) => a + s.count, 0);
  return all ? hit / all : 0;
};

test('agent: profiles.jsonl carries OTLP profiles; /api/profile serves a flame tree; on/off and target need the token', async (t) => {
  if (!requireBpf(t)) return;
  const exe = build('hot4', HOT_C);
  const child = run(exe, [], { OTEL_SERVICE_NAME: 'burner' });
  const cfgFile = path.join(dir, 'agent.yaml');
  fs.writeFileSync(cfgFile, 'tracers:\n  socket:\n    enabled: false\n  profile:\n    enabled: true\n    frequency_hz: 199\n    interval_ms: 1000\n');
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try { agent = await startAgent({ config: cfgFile }); } catch (e) { child.kill('SIGKILL'); throw e; }
  try {
    const token = fs.readFileSync(path.join(agent.dataDir, 'api-token'), 'utf8').trim();
    const put = (p: string, body: unknown, auth = true) => fetch(`http://127.0.0.1:${agent.apiPort}${p}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    assert.equal((await put('/api/profile/target', { services: ['burner'] }, false)).status, 401);
    const r = await put('/api/profile/target', { services: ['burner'] });
    assert.equal(r.status, 200, await r.clone().text());
    let found: { tree: { value: number }; services: Array<{ service: string }> } | undefined;
    for (let i = 0; i < 60 && !found; i++) {
      const j = await (await agent.api('/api/profile?service=burner&seconds=60')).json() as { tree: { value: number }; services: Array<{ service: string }> };
      if (j.tree.value >= 100) found = j; else await new Promise((res) => setTimeout(res, 500));
    }
    assert.ok(found, 'the flame tree of burner filled up');
    assert.ok(found.services.some((s) => s.service === 'burner'));
    // Intervals before the re-target hold every process; the latest ones only the target.
    await new Promise((res) => setTimeout(res, 2500));
    const recent = await (await agent.api('/api/profile?seconds=1')).json() as { services: Array<{ service: string }> };
    assert.deepEqual(recent.services.map((s) => s.service), ['burner']);
    const folded = await (await agent.api('/api/profile?service=burner&seconds=60&format=folded')).text();
    assert.match(folded, /^hot4;.*main;burn_hot \d+$/m);
    // OTLP: resource attributes name the service and pid; a stack ends in burn_hot.
    const lines = await waitFor(() => {
      const f = path.join(agent.dataDir, 'profiles.jsonl');
      const l = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
      return l.length ? l : undefined;
    }, 20_000, 300);
    const req = JSON.parse(lines[lines.length - 1]);
    const rp = req.resourceProfiles.find((x: { resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> } }) => x.resource.attributes.some((a) => a.key === 'service.name' && a.value.stringValue === 'burner'));
    assert.ok(rp, 'a resource with service.name=burner');
    const d = req.dictionary;
    const prof = rp.scopeProfiles[0].profiles[0];
    const leafNames = prof.samples.map((s: { stackIndex: number }) => d.stringTable[d.functionTable[d.locationTable[d.stackTable[s.stackIndex].locationIndices[0]].lines[0].functionIndex].nameStrindex]);
    assert.ok(leafNames.includes('burn_hot'), leafNames.join(','));
    // Off: the sample count stops growing.
    assert.equal((await put('/api/profile/enabled', { enabled: false })).status, 200);
    const st1 = await (await agent.api('/api/profile/status')).json() as { enabled: boolean; stats: { samples: number } };
    assert.equal(st1.enabled, false);
    await new Promise((res) => setTimeout(res, 1500));
    const st2 = await (await agent.api('/api/profile/status')).json() as { stats: { samples: number } };
    assert.equal(st2.stats.samples, st1.stats.samples);
    assert.equal((await put('/api/profile/enabled', { enabled: 'yes' })).status, 400);
  } finally {
    child.kill('SIGKILL');
    await agent.stop();
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
});

