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
