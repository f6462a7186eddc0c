// `telegen collect`: collector mode (no eBPF). Polls the configured targets this replica owns
// and exports them as OTLP metrics; SIGTERM flushes and exits 0.
import { Args, exitOnStopSignals } from './main';
import { ConfigError } from '../config';
import { resolveExportConfig, ExportConfigError } from '../export';
import { loadCollectConfig } from '../collect/config';
import { replicaIdentity } from '../collect/shard';
import { Collector } from '../collect';
import { apiSchema } from '../api/config';
import { checkApiAddress, checkDataDir } from './preflight';

const int = (v: string | true | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new ConfigError(`--${flag} needs a whole number`);
  return Number(v);
};

export async function collectCommand(args: Args): Promise<void> {
  const cfg = loadCollectConfig(typeof args.flags.config === 'string' ? args.flags.config : undefined);
  const dataDir = (typeof args.flags['data-dir'] === 'string' && args.flags['data-dir']) || process.env.TELEGEN_DATA_DIR;
  if (dataDir) cfg.data_dir = dataDir;
  const flagListen = typeof args.flags['api-listen'] === 'string' && args.flags['api-listen'];
  const listen = flagListen || process.env.TELEGEN_API_LISTEN;
  if (listen) {
    // Unchecked, "nope" reached server.listen() as port NaN: a RangeError with its stack.
    const r = apiSchema.shape.listen.safeParse(listen);
    if (!r.success) throw new ConfigError(`${flagListen ? '--api-listen' : 'TELEGEN_API_LISTEN'} "${listen}": ${r.error.issues[0]?.message ?? 'must be HOST:PORT'}`);
    cfg.api.listen = listen;
  }
  const id = replicaIdentity({
    index: int(args.flags['replica-index'], 'replica-index') ?? cfg.collect.replica_index,
    replicas: int(args.flags.replicas, 'replicas') ?? cfg.collect.replicas,
  });
  let resolved;
  try { resolved = resolveExportConfig(cfg.otlp ?? {}, process.env); } catch (e) {
    if (e instanceof ExportConfigError) throw new ConfigError(e.message);
    throw e;
  }
  // Data dir and API address: one sentence (before: the EADDRINUSE error logged with its stack).
  checkDataDir(cfg.data_dir, dataDir ? (typeof args.flags['data-dir'] === 'string' ? '--data-dir' : 'TELEGEN_DATA_DIR') : 'data_dir');
  if (cfg.api.enabled) await checkApiAddress(cfg.api.listen, listen ? (flagListen ? '--api-listen' : 'TELEGEN_API_LISTEN') : 'api.listen');
  const c = new Collector(cfg, resolved, id);
  await c.start();
  exitOnStopSignals(() => c.stop());
}
