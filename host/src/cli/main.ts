// `telegen` command line: run | replay | doctor | decoders. Errors are one clear sentence.
import { log, LOG_LEVELS, setLogLevel } from '../log';

const USAGE = `usage:
  telegen run [--config FILE] [--data-dir DIR] [--api-listen HOST:PORT]
  telegen loader --socket PATH [--config FILE] [--data-dir DIR] [--api-listen HOST:PORT]
  telegen worker --socket PATH
  telegen replay FILE.pcap[ng] [--format jsonl|otlp] [--decoders DIR]
  telegen doctor [--json] [--config FILE]
  telegen collect [--config FILE] [--replica-index N --replicas N] [--data-dir DIR] [--api-listen HOST:PORT]
  telegen decoders list|verify|sign|load|rollback …   (telegen decoders --help)
  telegen help | --help | -h          (also: telegen COMMAND --help)
`;

export interface Args { _: string[]; flags: Record<string, string | true> }

/** Flags each command takes: 'value' needs an argument (`--f X` or `--f=X`), 'bool' takes none. */
export type FlagSpec = Record<string, 'value' | 'bool'>;
const V = 'value' as const;
export const COMMAND_FLAGS: Record<string, FlagSpec> = {
  run: { config: V, 'data-dir': V, 'api-listen': V },
  loader: { socket: V, config: V, 'data-dir': V, 'api-listen': V },
  worker: { socket: V },
  replay: { format: V, decoders: V },
  doctor: { json: 'bool', config: V },
  collect: { config: V, 'replica-index': V, replicas: V, 'data-dir': V, 'api-listen': V },
  decoders: { dir: V, api: V, 'token-file': V, 'data-dir': V, name: V, signature: V, key: V },
};

/** A wrong command line: main() prints it with the command's usage and exits 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) { super(message); this.name = 'UsageError'; }
}

/** `--name VALUE`, `--name=VALUE`, `--flag`, `-h`. With a spec, an unknown flag or a value flag
 *  without its value is a UsageError (before, `--confg x` or a bare `--config` were ignored and
 *  the agent started on its defaults), and a bool flag never swallows the next argument. */
export function parseArgs(argv: string[], spec?: FlagSpec, command?: string): Args {
  const out: Args = { _: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h') { out.flags.help = true; continue; }
    if (a === '--') { out._.push(...argv.slice(i + 1)); break; }
    // `-d DIR` was "unexpected arguments "-d" "DIR"": there are no short flags but -h.
    if (spec && /^-[^-]/.test(a)) {
      const known = Object.keys(spec).map((f) => `--${f}`).join(', ');
      throw new UsageError(`unknown flag ${a}: flags are long, --name VALUE${known ? ` (telegen ${command} takes ${known})` : ''}`, command);
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      const kind = name === 'help' ? 'bool' : spec?.[name];
      if (spec && !kind) {
        const known = Object.keys(spec).map((f) => `--${f}`).join(', ');
        throw new UsageError(`unknown flag --${name}${known ? ` (telegen ${command} takes ${known})` : ` (telegen ${command} takes none)`}`, command);
      }
      if (eq > 0) {
        if (kind === 'bool') throw new UsageError(`--${name} takes no value`, command);
        out.flags[name] = a.slice(eq + 1);
      } else if (kind === 'bool') out.flags[name] = true;
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out.flags[name] = argv[++i];
      else if (spec) throw new UsageError(`--${name} needs a value`, command);
      else out.flags[name] = true;
      if (spec && kind === 'value' && out.flags[name] === '') throw new UsageError(`--${name} needs a value`, command);
    } else out._.push(a);
  }
  return out;
}

/** `telegen COMMAND --help` beyond the usage line: what the command does and each flag's default
 *  (`run --help` gave the usage line alone: where the output goes and the API address were in
 *  the README only). */
const DETAILS: Record<string, string> = {
  run: `The agent: traces this host's sockets (root or CAP_BPF + CAP_PERFMON) and exports spans, metrics and logs.
  --config FILE           YAML or JSON; every key has a default (README "Configuration")
  --data-dir DIR          where traces.jsonl, metrics.jsonl, logs.jsonl (without an OTLP endpoint),
                          api-token and telegen.pid go; default data_dir /var/lib/telegen (env TELEGEN_DATA_DIR)
  --api-listen HOST:PORT  the HTTP API and page; default api.listen 127.0.0.1:9464 (env TELEGEN_API_LISTEN)
OTLP export instead of files: otlp.endpoint or OTEL_EXPORTER_OTLP_ENDPOINT. SIGTERM/SIGINT flush and exit 0;
SIGHUP re-reads --config. Check this machine first with: telegen doctor
`,
  replay: `Decodes a capture (no root needed) and prints one span per line on stdout; a summary on stderr.
  --format jsonl|otlp     one JSON span per line (default), or one OTLP/JSON request
  --decoders DIR          .wasm decoders to use instead of the built-in ones
`,
  doctor: `What this kernel and process offer, which tracers can run, and which of them the config turns on.
  --json                  the same as one JSON document
  --config FILE           the config \`telegen run\` would use (default: the built-in defaults)
`,
  collect: `Collector mode, no eBPF: polls the targets in the config's collect: section and exports OTLP metrics.
  --config FILE           with collect.targets (README "Collector mode")
  --replica-index N --replicas N   this replica's ordinal and the count (else TELEGEN_REPLICA_INDEX, TELEGEN_REPLICAS)
  --data-dir DIR, --api-listen HOST:PORT   as for telegen run
`,
};

function usageOf(cmd: string | undefined, withDetails = false): string {
  if (!cmd) return USAGE;
  if (cmd === 'decoders') return require('./decoders').USAGE as string;
  const line = USAGE.split('\n').find((l) => l.startsWith(`  telegen ${cmd} `) || l === `  telegen ${cmd}`);
  if (!line) return USAGE;
  return `usage:\n${line}\n${withDetails && DETAILS[cmd] ? DETAILS[cmd] : ''}`;
}

/** The long-running commands (run, collect) on SIGTERM or SIGINT: stop() once (a second signal
 *  while it flushes is ignored), then exit 0, or 1 when stopping failed. */
export function exitOnStopSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping: flushing queues');
    stop().then(() => process.exit(0), (e) => { log.error({ err: e }, 'shutdown failed'); process.exit(1); });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

export async function main(argv: string[]): Promise<void> {
  const cmd = argv[0] === undefined || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h' ? undefined : argv[0];
  if (cmd === undefined) {
    // `telegen help run` / `telegen --help run`: that command's usage.
    const topic = argv[1];
    process.stdout.write(topic && COMMAND_FLAGS[topic] ? usageOf(topic, true) : USAGE);
    return;
  }
  if (!COMMAND_FLAGS[cmd]) {
    process.stderr.write(`telegen: unknown command "${cmd}"\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  let args: Args;
  try {
    args = parseArgs(argv.slice(1), COMMAND_FLAGS[cmd], cmd);
  } catch (e) {
    process.stderr.write(`telegen ${cmd}: ${(e as Error).message}\n${usageOf(cmd)}`);
    process.exitCode = 2;
    return;
  }
  // `telegen run --help` printed nothing and started the agent; `collect --help` started a collector.
  if (args.flags.help) { process.stdout.write(usageOf(cmd, true)); return; }
  if (args._.length && !['replay', 'decoders'].includes(cmd)) {
    process.stderr.write(`telegen ${cmd}: unexpected argument${args._.length > 1 ? 's' : ''} ${args._.map((a) => `"${a}"`).join(' ')} (flags are --name VALUE)\n${usageOf(cmd)}`);
    process.exitCode = 2;
    return;
  }
  // An unknown level made pino throw while loading (a stack trace, exit 1): say which and what is allowed.
  const lvl = process.env.TELEGEN_LOG_LEVEL;
  if (lvl && !(LOG_LEVELS as readonly string[]).includes(lvl)) {
    process.stderr.write(`telegen: TELEGEN_LOG_LEVEL: "${lvl}" is not allowed; use one of ${LOG_LEVELS.join(', ')}\n`);
    process.exitCode = 1;
    return;
  }
  // The one-shot commands print their result; the agent's info lines (each decoder loaded, port
  // hints) buried it on stderr. TELEGEN_LOG_LEVEL still wins.
  if (!lvl && (cmd === 'replay' || cmd === 'doctor' || cmd === 'decoders')) setLogLevel('warn');
  try {
    switch (cmd) {
      case 'run': return await (await import('./run')).runCommand(args);
      case 'loader': return await (await import('./privsep')).loaderCommand(args);
      case 'worker': return await (await import('./privsep')).workerCommand(args);
      case 'replay': process.exitCode = await (await import('./replay')).replayCommand(args); return;
      case 'collect': return await (await import('./collect')).collectCommand(args);
      case 'doctor': process.exitCode = await (await import('./doctor')).doctorCommand(args); return;
      case 'decoders': process.exitCode = await (await import('./decoders')).decodersCommand(args); return;
    }
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError) {
      process.stderr.write(`telegen ${cmd}: ${err.message}\n${usageOf(cmd)}`);
      process.exitCode = 2;
      return;
    }
    // Expected failures (bad config, unreadable capture) carry a sentence; anything else is a bug.
    if (err && (err.name === 'ConfigError' || err.constructor?.name === 'ConfigError' || (err as { userFacing?: boolean }).userFacing)) {
      process.stderr.write(`telegen: ${err.message}\n`);
    } else {
      log.error({ err }, 'telegen failed');
      process.stderr.write(`telegen: ${err?.message ?? String(e)}\n`);
    }
    process.exitCode = 1;
  }
}
