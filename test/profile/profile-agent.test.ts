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

import { HOT_C, SYSCALL_C, dir, build, run, profileOf, total, leafShare } from './helpers';
test('agent: profiles.jsonl carries OTLP profiles; /api/profile serves a flame tree; on/off and target need the token', async (t) => {
  if (!requireBpf(t)) return;
  const exe = build('hot4', HOT_C);
  const child = run(exe, [], { OTEL_SERVICE_NAME: 'burner' });
  const cfgFile = path.join(dir(), 'agent.yaml');
  // Starts on the child's pid (a small first interval on a busy machine), then re-targets by service.
  fs.writeFileSync(cfgFile, `tracers:\n  socket:\n    enabled: false\n  profile:\n    enabled: true\n    frequency_hz: 199\n    interval_ms: 1000\n    pids: [${child.pid}]\n`);
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try { agent = await startAgent({ config: cfgFile }); } catch (e) { child.kill('SIGKILL'); throw e; }
  try {
    const token = fs.readFileSync(path.join(agent.dataDir, 'api-token'), 'utf8').trim();
    const put = (p: string, body: unknown, auth = true) => fetch(`http://127.0.0.1:${agent.apiPort}${p}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    assert.equal((await put('/api/profile/target', { services: ['burner'] }, false)).status, 401);
    const r = await put('/api/profile/target', { services: ['burner'] });
    assert.equal(r.status, 200, await r.clone().text());
    const targetedAt = Date.now();
    let found: { tree: { value: number }; services: Array<{ service: string }> } | undefined;
    for (let i = 0; i < 60 && !found; i++) {
      const j = await (await agent.api('/api/profile?service=burner&seconds=60')).json() as { tree: { value: number }; services: Array<{ service: string }> };
      if (j.tree.value >= 100) found = j; else await new Promise((res) => setTimeout(res, 500));
    }
    assert.ok(found, 'the flame tree of burner filled up');
    assert.ok(found.services.some((s) => s.service === 'burner'));
    // Re-targeting closes the interval: every interval that ends after the PUT answered holds
    // only the target (the window is whole seconds, so it starts at or after the PUT).
    await new Promise((res) => setTimeout(res, 2500));
    let recent: Array<{ service: string }> = [];
    for (let i = 0; i < 60 && !recent.length; i++) {
      const seconds = Math.floor((Date.now() - targetedAt) / 1000);
      recent = (await (await agent.api(`/api/profile?seconds=${seconds}`)).json() as { services: Array<{ service: string }> }).services;
      if (!recent.length) await new Promise((res) => setTimeout(res, 500));
    }
    assert.deepEqual(recent.map((s) => s.service), ['burner']);
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
    // Off: the kernel stops counting and what it had counted is drained by the time the PUT
    // answers, so neither the kernel's counter nor the exported samples move afterwards.
    type Status = { enabled: boolean; stats: { samples: number; drainedSamples: number } };
    const status = async () => await (await agent.api('/api/profile/status')).json() as Status;
    assert.equal((await put('/api/profile/enabled', { enabled: false })).status, 200);
    const st1 = await status();
    assert.equal(st1.enabled, false);
    assert.ok(st1.stats.drainedSamples > 0 && st1.stats.samples >= st1.stats.drainedSamples, JSON.stringify(st1.stats));
    await new Promise((res) => setTimeout(res, 2500)); // more than two drain intervals
    const st2 = await status();
    assert.equal(st2.stats.samples, st1.stats.samples, 'kernel sample counter after off');
    assert.equal(st2.stats.drainedSamples, st1.stats.drainedSamples, 'exported samples after off');
    // On again: counting resumes.
    assert.equal((await put('/api/profile/enabled', { enabled: true })).status, 200);
    let st3 = await status();
    for (let i = 0; i < 60 && st3.stats.drainedSamples <= st2.stats.drainedSamples; i++) { await new Promise((res) => setTimeout(res, 300)); st3 = await status(); }
    assert.equal(st3.enabled, true);
    assert.ok(st3.stats.drainedSamples > st2.stats.drainedSamples, 'samples are exported again after on');
    assert.equal((await put('/api/profile/enabled', { enabled: 'yes' })).status, 400);
  } finally {
    child.kill('SIGKILL');
    await agent.stop();
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
});

