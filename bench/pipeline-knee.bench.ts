// Pipeline capacity, live: the events per second the running agent (default config, every tracer
// it enables) carries from ring buffer to export with 0 drops, and the knee where drops begin, for
// HTTP, DNS, PostgreSQL and Kafka traffic between real servers and clients on loopback:
//   HTTP   wrk → test/fixtures/http-server.js (Node), GET /hello, keep-alive;
//   DNS    bench/fixtures/dns-load.js (8 UDP sockets) → dnsmasq, A/AAAA of 16 names;
//   PgSQL  pgbench -S (select-only, simple protocol, 4 connections) → postgres 15;
//   Kafka  bench/fixtures/kafka-load.js (kafkajs, one message per produce, acks=1) → librdkafka's
//          mock broker (test/fixtures/kafka-mock).
// Each mix steps its offered rate up (BENCH_SECONDS per step, default 5; the last step unpaced).
// After each step the agent is given time to consume its backlog, then the step's counters are
// read from /metrics: ring records delivered, records the kernel could not write (ring full:
// counted per record in BPF), records shed by ingest, export items dropped (and, not as drops,
// decoder stream resets and bad records), spans by kind. A step has 0 drops when every drop
// counter stayed still. The knee is the first step with drops; the capacity is the best
// delivered rate before it.
// BENCH_MIXES=http,dns picks mixes; BENCH_AGENT_ENV='K=V …' sets the agent's environment (e.g.
// TELEGEN_CONTENDED_CPU_PERCENT=0: the contention budget off, to see the pipeline rather than
// the budget). Needs root (BPF), wrk, dnsmasq, postgres 15 + pgbench, gcc + librdkafka-dev.
import { spawn, execFileSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeResult, repoRoot, cpuSecondsOf, metricSum, metricsText, settle, startTelegen, RunningTelegen } from './lib';

interface Target { port: number; stop(): Promise<void>; extra?: Record<string, string> }
interface Mix {
  name: string; unit: string; rates: number[];
  start(): Promise<Target>;
  /** Offered `rate` per second (0: unpaced) for `seconds`; resolves with transactions completed. */
  load(t: Target, rate: number, seconds: number): Promise<number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '', err = '';
    p.stdout!.on('data', (d) => { out += String(d); });
    p.stderr!.on('data', (d) => { err += String(d); });
    p.once('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${c}: ${err.slice(-500)}`))));
  });
}

function waitOutput(p: ChildProcess, re: RegExp, ms = 15000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no ${re} in ${ms} ms: ${buf.slice(-300)}`)), ms);
    const on = (d: Buffer) => { buf += String(d); const m = re.exec(buf); if (m) { clearTimeout(timer); resolve(m); } };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
  });
}

const stopProc = (p: ChildProcess, sig: NodeJS.Signals = 'SIGTERM') => new Promise<void>((r) => {
  if (p.exitCode !== null || p.signalCode !== null) return r();
  p.once('exit', () => r());
  p.kill(sig);
  setTimeout(() => { if (p.exitCode === null) p.kill('SIGKILL'); }, 5000).unref();
});

const freePort = () => 20000 + Math.floor(Math.random() * 20000);

const http: Mix = {
  name: 'http', unit: 'requests', rates: [1000, 2000, 4000, 8000, 16000, 0],
  async start() {
    const p = spawn(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const m = await waitOutput(p, /listening (\d+)/);
    return { port: Number(m[1]), stop: () => stopProc(p) };
  },
  async load(t, rate, seconds) {
    const conns = 16;
    const args = ['-t1', `-c${conns}`, `-d${seconds}s`];
    const script = path.join(os.tmpdir(), `telegen-knee-${process.pid}.lua`);
    if (rate > 0) { fs.writeFileSync(script, `function delay() return ${Math.max(1, Math.round((conns * 1000) / rate))} end\n`); args.push('-s', script); }
    const out = await run('wrk', [...args, `http://127.0.0.1:${t.port}/hello`]);
    return Number(/(\d+) requests in/.exec(out)![1]);
  },
};

const dns: Mix = {
  name: 'dns', unit: 'queries', rates: [1000, 2000, 4000, 8000, 16000, 32000],
  async start() {
    const port = freePort();
    const p = spawn('dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--port=${port}`, '--listen-address=127.0.0.1',
      '--bind-interfaces', '--pid-file=', '--user=root', '--log-facility=-', '--cache-size=0', '--address=/example.test/10.1.2.3', '--address=/example.test/fd00::1'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitOutput(p, /started, version/);
    return { port, stop: () => stopProc(p) };
  },
  async load(t, rate, seconds) {
    const out = await run(process.execPath, [path.join(repoRoot, 'bench', 'fixtures', 'dns-load.js'), String(t.port), String(rate), String(seconds)]);
    return JSON.parse(out).answered;
  },
};

const PG_BIN = '/usr/lib/postgresql/15/bin';
const pgsql: Mix = {
  name: 'pgsql', unit: 'queries', rates: [500, 1000, 2000, 4000, 8000, 0],
  async start() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-knee-pg-'));
    fs.chmodSync(dir, 0o755);
    execFileSync('chown', ['-R', 'postgres:postgres', dir]);
    execFileSync('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'initdb'), '-D', path.join(dir, 'data'), '-U', 'postgres', '--auth-host=trust', '--auth-local=trust', '--no-sync'], { stdio: 'ignore' });
    const port = freePort();
    const p = spawn('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'postgres'), '-D', path.join(dir, 'data'), '-k', dir, '-p', String(port),
      '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'ssl=off'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitOutput(p, /ready to accept connections/, 30000);
    await run('pgbench', ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'postgres']);
    return { port, stop: async () => { await stopProc(p, 'SIGINT'); fs.rmSync(dir, { recursive: true, force: true }); } };
  },
  async load(t, rate, seconds) {
    const args = ['-n', '-S', '-c', '4', '-j', '1', '-T', String(seconds), '-h', '127.0.0.1', '-p', String(t.port), '-U', 'postgres'];
    if (rate > 0) args.push('-R', String(rate));
    const out = await run('pgbench', [...args, 'postgres']);
    return Number(/number of transactions actually processed: (\d+)/.exec(out)![1]);
  },
};

const kafka: Mix = {
  name: 'kafka', unit: 'produce requests', rates: [500, 1000, 2000, 4000, 8000, 16000],
  async start() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-knee-kafka-'));
    const bin = path.join(dir, 'mock-broker');
    execFileSync('gcc', ['-O1', '-o', bin, path.join(repoRoot, 'test', 'fixtures', 'kafka-mock', 'mock-broker.c'), '-lrdkafka']);
    const p = spawn(bin, ['1', 'telegen-knee'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const m = await waitOutput(p, /127\.0\.0\.1:(\d+)/);
    return { port: Number(m[1]), extra: { bootstrap: m[0] }, stop: async () => { await stopProc(p); fs.rmSync(dir, { recursive: true, force: true }); } };
  },
  async load(t, rate, seconds) {
    const out = await run(process.execPath, [path.join(repoRoot, 'bench', 'fixtures', 'kafka-load.js'), t.extra!.bootstrap, 'telegen-knee', String(rate), String(seconds)], { cwd: repoRoot });
    return JSON.parse(out).acked;
  },
};

/** The drop counters: any growth over a step is a drop of that step's traffic (or background). */
function counters(text: string): Record<string, number> {
  const span = (kind: string) => Number(new RegExp(`^telegen_spans_total\\{kind="${kind}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    ring_records: metricSum(text, 'telegen_bpf_records_total'),
    ring_full: metricSum(text, 'telegen_bpf_ring_full_total'),
    ingest_shed: metricSum(text, 'telegen_ingest_shed_records_total'),
    export_dropped: metricSum(text, 'telegen_export_dropped_total'),
    decoder_stream_resets: metricSum(text, 'telegen_decoder_stream_resets_total'),
    decoder_bad_records: metricSum(text, 'telegen_decoder_bad_records_total'),
    spans_server: span('server'),
    spans_client: span('client'),
  };
}
// Stream resets are reported but are not drops: a decoder refusing bytes loses no record, and
// here they come from the bench's own /metrics polls (a chunked response longer than a read's
// capture, cut across chunk boundaries: the exchange is still exported, flagged unknown).
const DROPS = ['ring_full', 'ingest_shed', 'export_dropped'];

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.error('pipeline-knee needs root (BPF)'); process.exit(1); }
  const seconds = Number(process.env.BENCH_SECONDS || 5);
  const all = [http, dns, pgsql, kafka];
  const pick = (process.env.BENCH_MIXES ?? 'http,dns,pgsql,kafka').split(',');
  const env = Object.fromEntries((process.env.BENCH_AGENT_ENV ?? '').split(/\s+/).filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]));
  const agent: RunningTelegen = await startTelegen({ name: 'this_tree', root: repoRoot, env: {} }, {}, [], { TELEGEN_OTLP_FILE_KEEP: '2', ...env });
  const cpuOf = () => cpuSecondsOf(agent.proc.pid!);
  const report: Record<string, unknown> = {};
  try {
    await sleep(3000);
    for (const mix of all.filter((m) => pick.includes(m.name))) {
      const target = await mix.start();
      const steps: Array<Record<string, number | boolean>> = [];
      try {
        await mix.load(target, mix.rates[0], 2); // warm-up: connections, JIT, the decoder's first streams
        await settle(agent.apiPort, 30000);
        for (const rate of mix.rates) {
          const m0 = counters(await metricsText(agent.apiPort));
          const c0 = cpuOf();
          const t0 = Date.now();
          const done = await mix.load(target, rate, seconds);
          const wall = (Date.now() - t0) / 1000;
          const cLoad = cpuOf();
          const s = await settle(agent.apiPort, 60000);
          const m1 = counters(await metricsText(agent.apiPort));
          const d: Record<string, number> = {};
          for (const k of Object.keys(m1)) d[k] = m1[k] - m0[k];
          const drops = DROPS.reduce((n, k) => n + d[k], 0);
          const row = {
            offered_per_second: rate, completed_per_second: Math.round(done / seconds), completed: done,
            ring_records_per_second: Math.round(d.ring_records / seconds),
            server_spans_per_transaction: Math.round((d.spans_server / (done || 1)) * 1000) / 1000,
            client_spans_per_transaction: Math.round((d.spans_client / (done || 1)) * 1000) / 1000,
            ...Object.fromEntries(DROPS.map((k) => [k, d[k]])), decoder_stream_resets: d.decoder_stream_resets, decoder_bad_records: d.decoder_bad_records,
            drops, zero_drops: drops === 0,
            agent_cpu_percent_of_a_core_during_load: Math.round(((cLoad - c0) / wall) * 1000) / 10,
            backlog_seconds_after: Math.round(s.seconds * 10) / 10,
          };
          steps.push(row);
          process.stdout.write(`${mix.name} ${rate || 'unpaced'}/s: ${JSON.stringify(row)}\n`);
        }
      } finally {
        await target.stop();
      }
      const knee = steps.find((x) => !x.zero_drops);
      const clean = steps.filter((x) => x.zero_drops && (!knee || steps.indexOf(x) < steps.indexOf(knee)));
      const best = clean.reduce<Record<string, number | boolean> | undefined>((b, x) => (!b || Number(x.ring_records_per_second) > Number(b.ring_records_per_second) ? x : b), undefined);
      report[mix.name] = {
        unit: mix.unit,
        capacity_zero_drops: best ? { [`${mix.unit.replace(/ /g, '_')}_per_second`]: best.completed_per_second, ring_records_per_second: best.ring_records_per_second } : null,
        knee: knee ? { offered_per_second: knee.offered_per_second || 'unpaced', completed_per_second: knee.completed_per_second, drops: knee.drops } : 'none: every step had 0 drops',
        steps,
      };
    }
  } finally {
    await agent.stop();
  }
  writeResult(process.env.BENCH_RESULT || 'pipeline-knee', {
    workload: { seconds_per_step: seconds, agent: 'telegen run, default config', agent_env: env },
    mixes: report,
    note: 'all on loopback, load generator, server and agent on the same 2 cores; a step is read after the agent consumed its backlog (≤60 s); drops = ring_full (records the kernel could not write) + ingest_shed + export_dropped over the step, background traffic included; spans per transaction from telegen_spans_total (1 server + 1 client span per transaction when nothing is lost; background adds a few); offered 0 = unpaced',
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
