// Fixtures shared by the profiler tests: programs with known hot functions, built by gcc in a
// temp dir, and child processes killed after the file's tests.
import { before, after } from 'node:test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import { Profiler } from '../../host/src/profile/profiler';
import { profileSchema } from '../../host/src/profile/config';
import { IntervalProfile, ProfileSample } from '../../host/src/profile/model';
export const HOT_C = `
#include <stdlib.h>
#include <unistd.h>
volatile unsigned long sink;
__attribute__((noinline)) void burn_hot(void) { for (unsigned long i = 0; i < 4000000; i++) sink += i * 7; }
__attribute__((noinline)) void burn_cold(void) { for (unsigned long i = 0; i < 1000000; i++) sink += i * 3; }
int main(void) { for (;;) { burn_hot(); burn_cold(); } }
`;
export const SYSCALL_C = `
#include <unistd.h>
#include <fcntl.h>
int main(void) { char b[64] = {0}; int fd = open("/dev/null", O_WRONLY); for (;;) { for (int i = 0; i < 1000; i++) write(fd, b, sizeof b); getppid(); } }
`;

let tmp = '';
export const dir = (): string => tmp;
const kids: ChildProcess[] = [];

before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-profile-')); });
after(() => {
  for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

export function build(name: string, src: string, strip = false): string {
  const c = path.join(tmp, `${name}.c`);
  const out = path.join(tmp, name);
  fs.writeFileSync(c, src);
  execFileSync('gcc', ['-O0', '-g', '-fno-omit-frame-pointer', '-o', out, c]);
  if (strip) execFileSync('strip', ['--strip-all', out]);
  return out;
}

export function run(cmd: string, args: string[], env?: Record<string, string>): ChildProcess {
  const p = spawn(cmd, args, { stdio: 'ignore', env: { ...process.env, ...env } });
  kids.push(p);
  return p;
}

/** Profiles one pid for `ms` and returns the interval (drained while it still runs). */
export async function profileOf(pid: number, ms: number, dataDir = tmp): Promise<{ iv: IntervalProfile; p: Profiler }> {
  const cfg = profileSchema.parse({ enabled: true, frequency_hz: 499, interval_ms: 600_000, pids: [pid], pprof: { enabled: true } });
  const p = new Profiler({ cfg, dataDir, keepSamples: true });
  try {
    await p.drainNow(true); // drops whatever was counted before the target was set
    await new Promise((r) => setTimeout(r, ms));
    const iv = await p.drainNow(true);
    return { iv: iv!, p };
  } finally {
    await p.close();
  }
}

export const total = (ss: ProfileSample[]) => ss.reduce((a, s) => a + s.count, 0);
export const leafShare = (ss: ProfileSample[], re: RegExp) => {
  const all = total(ss);
  const hit = ss.filter((s) => s.stack.length && re.test(s.stack[s.stack.length - 1].name)).reduce((a, s) => a + s.count, 0);
  return all ? hit / all : 0;
};

