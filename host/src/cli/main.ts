// `telegen` command line: run | replay | doctor | decoders. Errors are one clear sentence.
import { log } from '../log';

const USAGE = `usage:
  telegen run [--config FILE] [--data-dir DIR] [--api-listen HOST:PORT]
  telegen loader --socket PATH [--config FILE] [--data-dir DIR] [--api-listen HOST:PORT]
  telegen worker --socket PATH
  telegen replay FILE.pcap[ng] [--format jsonl|otlp] [--decoders DIR]
  telegen doctor [--json]
  telegen collect [--config FILE] [--replica-index N --replicas N] [--data-dir DIR] [--api-listen HOST:PORT]
  telegen decoders list|verify FILE.wasm|load FILE.wasm [--api HOST:PORT]
`;

export interface Args { _: string[]; flags: Record<string, string | true> }

export function parseArgs(argv: string[]): Args {
  const out: Args = { _: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) out.flags[a.slice(2, eq)] = a.slice(eq + 1);
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out.flags[a.slice(2)] = argv[++i];
      else out.flags[a.slice(2)] = true;
    } else out._.push(a);
  }
  return out;
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const cmd = args._.shift();
  try {
    switch (cmd) {
      case 'run': return await (await import('./run')).runCommand(args);
      case 'loader': return await (await import('./privsep')).loaderCommand(args);
      case 'worker': return await (await import('./privsep')).workerCommand(args);
      case 'replay': process.exitCode = await (await import('./replay')).replayCommand(args); return;
      case 'collect': return await (await import('./collect')).collectCommand(args);
      case 'doctor': process.exitCode = await (await import('./doctor')).doctorCommand(args); return;
      case 'decoders': process.exitCode = await (await import('./decoders')).decodersCommand(args); return;
      case undefined: case 'help': case '--help': process.stdout.write(USAGE); return;
      default:
        process.stderr.write(`telegen: unknown command "${cmd}"\n${USAGE}`);
        process.exitCode = 2;
    }
  } catch (e) {
    const err = e as Error;
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
