// Live captures on lo for the tests that check decoders against tshark on real traffic.
//
// tshark/dumpcap announce "Capturing on" before the capture reliably holds the next packets: CI
// twice lost the first connection of a test (a psql startup, four of five HTTP requests). Here
// dumpcap writes to a pipe, which it flushes per packet, so the test can see a packet arrive:
// bare TCP connects to the traced port (no payload: no decoder and no dissector sees them) are
// repeated until the first reaches the file, and only then does the test's traffic start.
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import type { TestContext } from 'node:test';
import { startServer, freePort, Served } from './agent';

export interface Capture { proc: ChildProcess; done: Promise<void> }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function knock(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.end());
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.setTimeout(2000, () => s.destroy());
  });
}

/** Starts dumpcap on lo writing `file` (pcapng) with `filter`; resolves once a probe connection
 *  to 127.0.0.1:`probePort` (which the filter must match) is in the capture. */
export async function startLoCapture(file: string, filter: string, probePort: number, bufferMiB = 64): Promise<Capture> {
  const out = fs.createWriteStream(file);
  const proc = spawn('dumpcap', ['-i', 'lo', '-q', '-B', String(bufferMiB), '-f', filter, '-w', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let bytes = 0;
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => { bytes += d.length; });
  proc.stdout!.pipe(out);
  proc.stderr!.on('data', (d: Buffer) => { err += String(d); });
  const done = new Promise<void>((resolve) => out.on('close', () => resolve()));
  const deadline = Date.now() + 30_000;
  // The pcapng header blocks come first; a packet after them means the capture is live.
  while (!/Capturing on/.test(err) || bytes === 0) {
    if (proc.exitCode !== null) throw new Error(`dumpcap failed: ${err}`);
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`dumpcap did not start: ${err}`); }
    await sleep(20);
  }
  await sleep(100); // the header blocks whole
  const header = bytes;
  while (bytes === header) {
    if (proc.exitCode !== null) throw new Error(`dumpcap failed: ${err}`);
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`dumpcap saw no probe packet on port ${probePort}: ${err}`); }
    await knock(probePort);
    await sleep(50);
  }
  return { proc, done };
}

/** Stops the capture and waits until the file is complete. */
export async function stopLoCapture(c: Capture): Promise<void> {
  await sleep(300); // the last packets of the traffic still on their way through lo
  if (c.proc.exitCode === null) {
    const exited = new Promise<void>((r) => c.proc.once('exit', () => r()));
    c.proc.kill('SIGINT');
    await Promise.race([exited, sleep(15_000)]);
    if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  }
  await Promise.race([c.done, sleep(15_000)]);
}

/** Whether the test may capture on lo: as root, yes; otherwise it skips, but under CI (which runs
 *  as root) it fails, so that a lost privilege never passes as a skipped test. */
export function rootForCapture(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') throw new Error('capturing on lo needs root');
  t.skip('capturing on lo needs root');
  return false;
}

/** A server to record: argv without its port, which is appended (a free one unless given); it
 *  prints `listening <port>` when ready. */
export interface LoServer { argv: string[]; port?: number }
export const nodeServer = (js: string, port?: number): LoServer => ({ argv: [process.execPath, '-e', js], port });
export const pythonServer = (py: string): LoServer => ({ argv: ['python3', '-c', py] });

export interface LoRecording<T> { file: string; tmp: string; ports: number[]; port: number; out: T }

/** Starts `servers`, captures their ports on lo into `tmp`/`file` while `traffic` runs (the first
 *  server's port probes the capture), then stops capture and servers, failed or not. `tmp` (a new
 *  dir for the pcapng and whatever the test derives from it) is removed when the test ends. */
export async function recordOnLo<T>(t: TestContext, opts: { prefix: string; file: string; servers: LoServer[] }, traffic: (port: number, ports: number[]) => T | Promise<T>): Promise<LoRecording<T>> {
  const started: Served[] = [];
  try {
    for (const s of opts.servers) started.push(await startServer(s.argv[0], [...s.argv.slice(1), String(s.port ?? await freePort())]));
    const ports = started.map((s) => s.port);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), opts.prefix));
    t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const file = path.join(tmp, opts.file);
    let cap: Capture | undefined;
    try {
      cap = await startLoCapture(file, ports.map((p) => `tcp port ${p}`).join(' or '), ports[0]);
      const out = await traffic(ports[0], ports);
      return { file, tmp, ports, port: ports[0], out };
    } finally {
      if (cap) await stopLoCapture(cap);
    }
  } finally {
    for (const s of started) await s.stop();
  }
}
