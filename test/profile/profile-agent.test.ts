// The profiler inside the real agent: off in the config and switched on through the API (the
// kernel side loads then, and is released at switch-off), re-targeted by service and pid, OTLP
// profiles and pprof files, and CPU samples linked to the traced request in flight on their
// thread (a thread-per-connection C server burning CPU per request, driven by curl).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { execFileSync, spawn } from 'child_process';
import { Profile } from 'pprof-format';
import { requireBpf, startAgent, startServer, waitFor, Served } from '../helpers/agent';
import { HOT_C, REQ_SERVER_C, dir, build, run } from './helpers';

interface OtlpSample { stackIndex: number; values: string[]; linkIndex?: number }
interface Dict { stringTable: string[]; functionTable: Array<{ nameStrindex: number }>; locationTable: Array<{ lines: Array<{ functionIndex: number }> }>; stackTable: Array<{ locationIndices: number[] }>; linkTable: Array<{ traceId: string; spanId: string }> }
interface FlatSample { pid: number; names: string[]; count: number; link?: { traceId: string; spanId: string } }

/** Every sample of profiles.jsonl with its process, frame names and trace link. */
function readProfileSamples(file: string): FlatSample[] {
  if (!fs.existsSync(file)) return [];
  const out: FlatSample[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const req = JSON.parse(line) as { dictionary: Dict; resourceProfiles: Array<{ resource: { attributes: Array<{ key: string; value: { intValue?: string } }> }; scopeProfiles: Array<{ profiles: Array<{ samples: OtlpSample[] }> }> }> };
    const d = req.dictionary;
    for (const rp of req.resourceProfiles) {
      const pid = Number(rp.resource.attributes.find((a) => a.key === 'process.pid')?.value.intValue);
      for (const s of rp.scopeProfiles[0].profiles[0].samples) {
        const names = d.stackTable[s.stackIndex].locationIndices.map((li) => d.stringTable[d.functionTable[d.locationTable[li].lines[0].functionIndex].nameStrindex]);
        const link = s.linkIndex ? d.linkTable[s.linkIndex] : undefined;
        out.push({ pid, names, count: Number(s.values[0]), link });
      }
    }
  }
  return out;
}

function curlAsync(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('curl', ['-sS', '--max-time', '30', url], { stdio: 'ignore' });
    p.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`curl ${url} exited ${c}`))));
  });
}

const bpftoolHasProg = (id: number): boolean => { try { execFileSync('bpftool', ['prog', 'show', 'id', String(id)], { stdio: 'ignore' }); return true; } catch { return false; } };

test('agent: switched on through the API while off in the config; OTLP profiles, flame tree, on/off (detaches) and target; samples linked to the request in flight on their thread', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const exe = build('hot4', HOT_C);
  const child = run(exe, [], { OTEL_SERVICE_NAME: 'burner' });
  let server: Served;
  try { server = await startServer(build('reqserver', REQ_SERVER_C), []); } catch (e) { child.kill('SIGKILL'); throw e; }
  const cfgFile = path.join(dir(), 'agent.yaml');
  // Off in the config, aimed at the child's pid (a small first interval on a busy machine); the
  // socket tracer watches only the request server. link_wait_ms above the default: on this loaded
  // machine the first spans can reach correlation seconds after their request ended.
  fs.writeFileSync(cfgFile, `tracers:\n  socket:\n    target_pid: ${server.proc.pid}\n  tls: { enabled: false }\n  go: { enabled: false }\n  tcp: { enabled: false }\n  xdp: { enabled: false }\n  profile:\n    enabled: false\n    frequency_hz: 199\n    interval_ms: 1000\n    link_wait_ms: 6000\n    pids: [${child.pid}]\n`);
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try { agent = await startAgent({ config: cfgFile }); } catch (e) { child.kill('SIGKILL'); await server.stop(); throw e; }
  try {
    const token = fs.readFileSync(path.join(agent.dataDir, 'api-token'), 'utf8').trim();
    const put = (p: string, body: unknown, auth = true) => fetch(`http://127.0.0.1:${agent.apiPort}${p}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    type Status = { enabled: boolean; attached: boolean; attach: { progId: number } | null; stats: { samples: number; drainedSamples: number; attaches: number; linkedSamples: number } };
    const status = async () => await (await agent.api('/api/profile/status')).json() as Status;
    // Nothing loaded until asked for.
    const st0 = await status();
    assert.deepEqual([st0.enabled, st0.attached, st0.attach, st0.stats.attaches], [false, false, null, 0]);
    // /api/status and telegen_tracer_up follow the switch (they said "running" while it was off).
    const tracerState = async () => {
      const st = await (await agent.api('/api/status')).json() as { tracers: Array<{ name: string; ok: boolean; detail: string }> };
      const prom = await (await agent.api('/metrics')).text();
      const row = st.tracers.find((x) => x.name === 'profile')!;
      return { ok: row.ok, detail: row.detail, up: /^telegen_tracer_up\{tracer="profile"\} (\d)/m.exec(prom)?.[1] };
    };
    const off0 = await tracerState();
    assert.deepEqual([off0.ok, off0.up], [false, '0'], JSON.stringify(off0));
    assert.match(off0.detail, /off in the config/);
    assert.equal((await put('/api/profile/enabled', { enabled: true }, false)).status, 401);
    const on = await put('/api/profile/enabled', { enabled: true });
    assert.equal(on.status, 200, await on.clone().text());
    const stOn = await status();
    assert.deepEqual([stOn.enabled, stOn.attached, stOn.stats.attaches], [true, true, 1]);
    const firstProg = stOn.attach!.progId;
    const on1 = await tracerState();
    assert.deepEqual([on1.ok, on1.up], [true, '1'], JSON.stringify(on1));
    assert.match(on1.detail, /^199 Hz on \d+\/\d+ CPUs/);
    assert.ok(bpftoolHasProg(firstProg), 'the sampler program is loaded after the switch-on');
    // Re-targeted to the burner by service and the request server by pid; the requests (three
    // pairs, two in flight at once on two threads, each burning 200 ms of CPU in burn_request on
    // its own thread) run now, so their intervals are joined while the checks below wait.
    const srvPid = server.proc.pid!;
    assert.equal((await put('/api/profile/target', { services: ['burner'] }, false)).status, 401);
    const r = await put('/api/profile/target', { services: ['burner'], pids: [srvPid] });
    assert.equal(r.status, 200, await r.clone().text());
    const targetedAt = Date.now();
    for (let i = 0; i < 3; i++) await Promise.all([curlAsync(`http://127.0.0.1:${server.port}/work/${i}a`), curlAsync(`http://127.0.0.1:${server.port}/work/${i}b`)]);
    let found: { tree: { value: number }; services: Array<{ service: string }> } | undefined;
    for (let i = 0; i < 60 && !found; i++) {
      const j = await (await agent.api('/api/profile?service=burner&seconds=60')).json() as { tree: { value: number }; services: Array<{ service: string }> };
      if (j.tree.value >= 100) found = j; else await new Promise((res) => setTimeout(res, 500));
    }
    assert.ok(found, 'the flame tree of burner filled up');
    assert.ok(found.services.some((s) => s.service === 'burner'));
    // Re-targeting closes the interval: every interval that ends after the PUT answered holds
    // only the target (the window is whole seconds, so it starts at or after the PUT): the
    // burner and the request server (named after its executable).
    await new Promise((res) => setTimeout(res, 2500));
    let recent: Array<{ service: string }> = [];
    for (let i = 0; i < 60 && !recent.length; i++) {
      const seconds = Math.floor((Date.now() - targetedAt) / 1000);
      recent = (await (await agent.api(`/api/profile?seconds=${seconds}`)).json() as { services: Array<{ service: string }> }).services;
      if (!recent.length) await new Promise((res) => setTimeout(res, 500));
    }
    assert.ok(recent.some((s) => s.service === 'burner'), JSON.stringify(recent));
    assert.deepEqual(recent.map((s) => s.service).filter((x) => x !== 'burner' && x !== 'reqserver'), []);
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

    // Trace links: the spans of the requests above, and the samples in burn_request.
    const want = ['0a', '0b', '1a', '1b', '2a', '2b'].map((x) => `/work/${x}`);
    const spans = await waitFor(() => {
      const ss = agent.spans().filter((x) => x.kind === 2 && want.includes(String(x.attributes['url.path'])));
      return ss.length === want.length ? ss : undefined;
    }, 30_000, 300);
    for (const sp of spans) assert.equal(sp.attributes['process.pid'], srvPid);
    assert.equal(new Set(spans.map((x) => x.attributes['thread.id'])).size, want.length, 'one handler thread per request');
    const bySpan = new Map(spans.map((x) => [x.spanId, x]));
    const profFile = path.join(agent.dataDir, 'profiles.jsonl');
    const inBurn = (ss: FlatSample[]) => ss.filter((x) => x.pid === srvPid && x.names.includes('burn_request'));
    // Every request's span gets samples (200 ms of CPU at 199 Hz is ~40).
    const burn = await waitFor(() => {
      const b = inBurn(readProfileSamples(profFile));
      const linked = new Set(b.filter((x) => x.link).map((x) => x.link!.spanId));
      return spans.every((x) => linked.has(x.spanId)) ? b : undefined;
    }, 40_000, 500);
    let linked = 0;
    let all = 0;
    for (const x of burn) {
      all += x.count;
      if (!x.link) continue;
      linked += x.count;
      const sp = bySpan.get(x.link.spanId);
      assert.ok(sp, `sample linked to span ${x.link.spanId}, not one of the requests`);
      assert.equal(x.link.traceId, sp.traceId);
    }
    // Exact on thread-per-request: burn_request runs between the request's read and its
    // response's write, on the thread the span names.
    const per = spans.map((x) => burn.filter((b) => b.link?.spanId === x.spanId).reduce((a, b) => a + b.count, 0));
    assert.ok(linked / all >= 0.9, `burn_request samples linked ${linked}/${all} (per request ${per.join(',')}); status ${JSON.stringify((await status()).stats)}`);
    // Outside requests no link: the server's background burn_idle thread and the burner process.
    const samples = readProfileSamples(profFile);
    const idle = samples.filter((x) => x.pid === srvPid && x.names.includes('burn_idle'));
    assert.ok(idle.length > 0, 'burn_idle was sampled');
    assert.ok(idle.every((x) => !x.link), 'burn_idle samples carry no trace link');
    const burner = samples.filter((x) => x.pid === child.pid);
    assert.ok(burner.length > 0 && burner.every((x) => !x.link), 'the burner process samples carry no trace link');
    // pprof: the same link as labels.
    const pprofDir = path.join(agent.dataDir, 'pprof');
    let labelled = 0;
    for (const f of fs.readdirSync(pprofDir).filter((n) => n.endsWith('.pb.gz'))) {
      const prof = Profile.decode(gunzipSync(fs.readFileSync(path.join(pprofDir, f))));
      const str = prof.stringTable.strings;
      for (const sm of prof.sample) {
        const lab = new Map(sm.label.map((l) => [str[Number(l.key)], str[Number(l.str)]]));
        const sid = lab.get('span_id');
        if (!sid) continue;
        labelled++;
        assert.equal(lab.get('trace_id'), bySpan.get(sid)?.traceId, `pprof labels of span ${sid}`);
      }
    }
    assert.ok(labelled > 0, 'pprof samples carry trace_id/span_id labels');
    // The API: the CPU one trace burned (the store gets an interval before its OTLP is written).
    const one = spans[0];
    const inFile = readProfileSamples(profFile).filter((x) => x.link?.traceId === one.traceId).reduce((a, x) => a + x.count, 0);
    type Node = { name: string; value: number; children: Node[] };
    const tt = await (await agent.api(`/api/profile?trace_id=${one.traceId}&seconds=600`)).json() as { tree: Node };
    const names = (n: Node): string[] => [n.name, ...n.children.flatMap(names)];
    assert.ok(tt.tree.value >= inFile && inFile > 0, `trace tree ${tt.tree.value} samples, ${inFile} in the file`);
    assert.ok(names(tt.tree).includes('burn_request'), names(tt.tree).join(','));
    assert.equal((await agent.api('/api/profile?trace_id=nothex')).status, 400);
    const linkedTotal = (await status()).stats.linkedSamples;
    assert.ok(linkedTotal >= linked, `linked samples counted: ${linkedTotal}`);

    // Off: the kernel stops counting and what it had counted is drained by the time the PUT
    // answers, so neither the kernel's counter nor the exported samples move afterwards; the
    // program is released.
    assert.equal((await put('/api/profile/enabled', { enabled: false })).status, 200);
    const st1 = await status();
    assert.equal(st1.enabled, false);
    assert.equal(st1.attached, false);
    assert.equal(bpftoolHasProg(firstProg), false, 'the sampler program is gone after the switch-off');
    const off1 = await tracerState();
    assert.deepEqual([off1.ok, off1.up], [false, '0'], JSON.stringify(off1));
    assert.match(off1.detail, /switched off/);
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
    assert.equal(st3.stats.attaches, 2, 'loaded again at the second switch-on');
    assert.equal((await put('/api/profile/enabled', { enabled: 'yes' })).status, 400);
  } finally {
    child.kill('SIGKILL');
    await server.stop();
    await agent.stop();
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
});

