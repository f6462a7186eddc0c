// `telegen loader --socket PATH` and `telegen worker --socket PATH`: the two halves of
// privilege separation as two processes someone else starts (the pod's two containers, or two
// systemd units), so neither has to switch user. `telegen run` with
// security.privilege_separation spawns the worker itself instead (docs/security.md).
import { Args } from './main';
import { ConfigError } from '../config';
import { loadRunConfig } from './run';
import { checkPrivileges } from './preflight';

function socketFlag(args: Args, cmd: string): string {
  const s = args.flags.socket;
  if (typeof s !== 'string' || !s.startsWith('/')) throw new ConfigError(`telegen ${cmd}: --socket /absolute/path is required (the Unix socket shared by loader and worker)`);
  return s;
}

export async function loaderCommand(args: Args): Promise<void> {
  const socket = socketFlag(args, 'loader');
  const { cfg } = loadRunConfig(args);
  // Without CAP_BPF the loader's first tracer failed with libbpf's "Couldn't load trivial BPF program".
  checkPrivileges(cfg, undefined, undefined, 'loader');
  return (await import('../security/privsep/loader')).runLoader(cfg, { kind: 'pod', socket }, () => loadRunConfig(args).cfg);
}

export async function workerCommand(args: Args): Promise<void> {
  return (await import('../security/privsep/worker')).runWorker({ socket: socketFlag(args, 'worker') });
}
