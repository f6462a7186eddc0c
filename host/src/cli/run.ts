// `telegen run`: the agent on its embedded default (OTLP/JSON files + API on 127.0.0.1).
import { Args, exitOnStopSignals } from './main';
import { loadConfig, ConfigError } from '../config';
import { applyReload, countReloads } from '../config/reload';
import { resolveExportConfig, ExportConfigError } from '../export';
import { Agent } from '../agent';
import { log, setLogLevel } from '../log';
import { takeEarlyHangup } from './hangup';
import { preflightRun } from './preflight';

/** The config `run` and `loader` start from: the file, then --data-dir/--api-listen (or their
 *  env vars) over it; export settings checked up front. */
export function loadRunConfig(args: Args) {
  const overrides: Record<string, unknown> = {};
  const origins: Record<string, string> = {};
  const flagDir = typeof args.flags['data-dir'] === 'string' && args.flags['data-dir'];
  const dataDir = flagDir || process.env.TELEGEN_DATA_DIR;
  if (dataDir) { overrides.data_dir = dataDir; origins.data_dir = flagDir ? '--data-dir' : 'TELEGEN_DATA_DIR'; }
  const flagListen = typeof args.flags['api-listen'] === 'string' && args.flags['api-listen'];
  const listen = flagListen || process.env.TELEGEN_API_LISTEN;
  if (listen) { overrides.api = { listen }; origins['api.listen'] = flagListen ? '--api-listen' : 'TELEGEN_API_LISTEN'; }
  const cfg = loadConfig(typeof args.flags.config === 'string' ? args.flags.config : undefined, overrides, origins);
  let resolved;
  try { resolved = resolveExportConfig(cfg.otlp ?? {}, process.env); } catch (e) {
    if (e instanceof ExportConfigError) throw new ConfigError(e.message);
    throw e;
  }
  return { cfg, resolved, overrides, origins };
}

export async function runCommand(args: Args): Promise<void> {
  // Under privilege separation the loader re-runs this command as the worker (security/privsep).
  if (process.env.TELEGEN_PRIVSEP_ROLE === 'worker') return (await import('../security/privsep/worker')).runWorker();
  const { cfg, resolved, overrides, origins } = loadRunConfig(args);
  setLogLevel(cfg.log_level);
  // Privileges, data dir (writable, not another agent's), API address and named files: one
  // sentence now rather than a failure after every tracer attached (cli/preflight.ts).
  await preflightRun(cfg, { dataDirFrom: origins.data_dir, listenFrom: origins['api.listen'] });
  if (cfg.security.privilege_separation) return (await import('../security/privsep/loader')).runLoader(cfg, { kind: 'spawn' }, () => loadRunConfig(args).cfg);
  const agent = new Agent(cfg, resolved);
  // Node's default for SIGHUP is to exit: one sent while the tracers attach (a reload sidecar
  // firing early) is held and applied once the agent runs.
  const cfgFile = typeof args.flags.config === 'string' ? args.flags.config : undefined;
  let running = false;
  let heldHup = false;
  process.on('SIGHUP', () => { if (running) reloadConfig(agent, cfgFile, overrides); else heldHup = true; });
  if (takeEarlyHangup()) heldHup = true;
  try {
    await agent.start({ dropPrivileges: true });
  } catch (e) {
    // Start-up failed after some tracers attached (e.g. the API port is taken): detach what was
    // attached and exit, instead of tracing on with no API — their threads and timers would
    // otherwise keep the process alive with exit code 1 set and nobody told.
    const err = e as Error;
    log.error({ err: err.message }, 'start-up failed: detaching and exiting');
    process.stderr.write(`telegen: start-up failed: ${err.message}\n`);
    await Promise.race([agent.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000).unref())]);
    process.exit(1);
  }
  countReloads(agent);
  running = true;
  if (heldHup) reloadConfig(agent, cfgFile, overrides);
  exitOnStopSignals(() => agent.stop());
}

/** SIGHUP: the file is loaded and validated as at start (an invalid one never replaces the running
 *  config, and without a handler Node would exit on SIGHUP); what can change live is applied, the
 *  changed keys that need a restart are named. */
export function reloadConfig(agent: Agent, cfgFile: string | undefined, overrides: Record<string, unknown>): void {
  // Started without --config there is no file to re-read: "config reloaded, applied: []" read as
  // if a file had been taken.
  if (!cfgFile) { log.warn('config reload (SIGHUP): telegen run was started without --config, so there is no file to re-read; nothing changed'); return; }
  applyReload(agent, cfgFile, () => {
    const next = loadConfig(cfgFile, overrides);
    resolveExportConfig(next.otlp ?? {}, process.env);
    return next;
  });
}
