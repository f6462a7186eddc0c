// Signals to a pid read from a file (postmaster.pid): a half-written file parses as 0, and
// process.kill(0, sig) signals the whole process group — the test runner included. Only a real
// other process is ever signalled; a process that is already gone is not an error.
export function signalPid(pid: number, sig: NodeJS.Signals): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || pid === process.ppid) {
    throw new Error(`refusing to signal pid ${pid} (${sig}): not another process`);
  }
  try {
    process.kill(pid, sig);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}
