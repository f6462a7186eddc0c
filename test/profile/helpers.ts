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

/** A thread-per-connection HTTP server: each request burns 200 ms of its thread's CPU in
 *  burn_request (thread CPU time, so the amount does not depend on machine load); a background
 *  thread burns in burn_idle outside any request. Prints "listening PORT". */
export const REQ_SERVER_C = `
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
volatile unsigned long sink;
static double cpu_ms(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
__attribute__((noinline)) void burn_request(double ms) { double end = cpu_ms() + ms; while (cpu_ms() < end) for (unsigned long i = 0; i < 100000; i++) sink += i * 7; }
__attribute__((noinline)) void burn_idle(double ms) { double end = cpu_ms() + ms; while (cpu_ms() < end) for (unsigned long i = 0; i < 100000; i++) sink += i * 3; }
static void *idle_loop(void *a) { (void)a; for (;;) { burn_idle(30); usleep(150000); } return 0; }
static void *handle(void *a) {
  int fd = (int)(long)a; char buf[4096]; size_t got = 0;
  while (got < sizeof buf - 1) { ssize_t n = read(fd, buf + got, sizeof buf - 1 - got); if (n <= 0) break; got += n; buf[got] = 0; if (strstr(buf, "\\r\\n\\r\\n")) break; }
  burn_request(200);
  const char *r = "HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n";
  if (write(fd, r, strlen(r)) < 0) perror("write");
  close(fd);
  return 0;
}
int main(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 64)) { perror("listen"); return 1; }
  socklen_t l = sizeof a; getsockname(s, (struct sockaddr *)&a, &l);
  printf("listening %d\\n", ntohs(a.sin_port)); fflush(stdout);
  pthread_t t; pthread_create(&t, 0, idle_loop, 0);
  for (;;) { int c = accept(s, 0, 0); if (c < 0) continue; pthread_t h; pthread_create(&h, 0, handle, (void *)(long)c); pthread_detach(h); }
}
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
  execFileSync('gcc', ['-O0', '-g', '-fno-omit-frame-pointer', '-pthread', '-o', out, c]);
  if (strip) execFileSync('strip', ['--strip-all', out]);
  return out;
}

export function run(cmd: string, args: string[], env?: Record<string, string>): ChildProcess {
  const p = spawn(cmd, args, { stdio: 'ignore', env: { ...process.env, ...env } });
  kids.push(p);
  return p;
}

/** Runs `exe`, gives it 200 ms to get going, profiles it for `ms`, then kills it. */
export async function profileRunning(exe: string, ms: number, dataDir = tmp): Promise<{ iv: IntervalProfile; p: Profiler; pid: number }> {
  const child = run(exe, []);
  try {
    await new Promise((r) => setTimeout(r, 200));
    return { ...(await profileOf(child.pid!, ms, dataDir)), pid: child.pid! };
  } finally {
    child.kill('SIGKILL');
  }
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

