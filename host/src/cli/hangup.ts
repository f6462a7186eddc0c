// Node's default for SIGHUP is to exit. `telegen run` and the privsep loader reload on it, but
// their handlers exist only once their modules loaded (~1 s after exec on this machine): a reload
// sidecar firing that early killed the agent. bin/telegen installs this first, for those commands
// only (others keep the default: a hangup ends `telegen doctor`).
let early = false;

export function holdHangups(): void {
  process.on('SIGHUP', () => { early = true; });
}

/** Whether a SIGHUP came before the command's own handler was installed; reading clears it. */
export function takeEarlyHangup(): boolean {
  const e = early;
  early = false;
  return e;
}
