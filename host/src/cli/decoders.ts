// `telegen decoders list|verify|sign|load|rollback`.
import * as fs from 'fs';
import * as path from 'path';
import { Args } from './main';
import { DecoderInstance, DecoderLoadError } from '../decoders/instance';
import { DecoderRegistry, defaultDecodersDir } from '../decoders/registry';
import { signModule } from '../decoders/policy';
import { decoderList } from '../api/server';

/** A missing or unreadable file is a sentence, not a logged stack trace (main.ts prints it). */
function readInput(file: string, what: string): Buffer {
  try { return fs.readFileSync(file); } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'does not exist' : err.code === 'EISDIR' ? 'is a directory' : `cannot be read (${err.message})`;
    throw Object.assign(new Error(`${what} ${file} ${why}`), { userFacing: true });
  }
}

export const USAGE = `usage:
  telegen decoders list [--dir DIR]
  telegen decoders verify FILE.wasm
  telegen decoders sign FILE.wasm --key ED25519_PRIVATE.pem        (writes FILE.wasm.sig)
  telegen decoders load NAME.wasm [--name NAME] [--signature FILE.sig] [--api HOST:PORT | https://HOST:PORT] [--token-file F | --data-dir DIR]
  telegen decoders rollback NAME [--api HOST:PORT | https://HOST:PORT] [--token-file F | --data-dir DIR]
`;

/** Where the bearer token is read from: TELEGEN_API_TOKEN, --token-file, else DATA_DIR/api-token. */
function tokenSource(args: Args): string {
  if (process.env.TELEGEN_API_TOKEN) return 'TELEGEN_API_TOKEN';
  return typeof args.flags['token-file'] === 'string' ? args.flags['token-file']
    : path.join(typeof args.flags['data-dir'] === 'string' ? args.flags['data-dir'] : (process.env.TELEGEN_DATA_DIR || '/var/lib/telegen'), 'api-token');
}

function token(args: Args): string | undefined {
  if (process.env.TELEGEN_API_TOKEN) return process.env.TELEGEN_API_TOKEN;
  try { return fs.readFileSync(tokenSource(args), 'utf8').trim(); } catch { return undefined; }
}

function api(args: Args): string {
  return typeof args.flags.api === 'string' ? args.flags.api : (process.env.TELEGEN_API_LISTEN || '127.0.0.1:9464');
}

/** HOST:PORT is plain HTTP (the loopback default); an API served with api.tls is given as https://HOST:PORT. */
const apiUrl = (a: string): string => (/^https?:\/\//.test(a) ? a.replace(/\/+$/, '') : `http://${a}`);

async function call(args: Args, method: string, p: string, body?: Uint8Array, extra: Record<string, string> = {}): Promise<number> {
  const headers: Record<string, string> = { ...extra };
  const t = token(args);
  if (t) headers.authorization = `Bearer ${t}`;
  let res: Response;
  try {
    res = await fetch(`${apiUrl(api(args))}${p}`, { method, body, headers });
  } catch (e) {
    // undici says only "fetch failed"; the reason (ECONNREFUSED …) is in its cause.
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    process.stderr.write(`telegen: cannot reach the agent API at ${api(args)} (${cause?.code ?? cause?.message ?? (e as Error).message}): is the agent running there? (--api HOST:PORT; default TELEGEN_API_LISTEN or 127.0.0.1:9464)\n`);
    return 1;
  }
  const text = await res.text();
  (res.ok ? process.stdout : process.stderr).write(`${res.status} ${text}\n`);
  if (res.status === 401) {
    process.stderr.write(`telegen: the agent refused the token ${t ? `read from ${tokenSource(args)}` : `(none: ${tokenSource(args)} is not readable)`}: give the running agent's --data-dir, or --token-file\n`);
  }
  return res.ok ? 0 : 1;
}

export async function decodersCommand(args: Args): Promise<number> {
  const sub = args._[0];
  const file = args._[1];
  if (sub === 'list') {
    const dir = typeof args.flags.dir === 'string' ? args.flags.dir : defaultDecodersDir();
    // A missing directory listed nothing and exited 0 (only a JSON log line said why).
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
      process.stderr.write(`telegen: decoder directory ${dir} does not exist${args.flags.dir ? '' : ' (run npm run build)'}\n`);
      return 1;
    }
    const reg = new DecoderRegistry({ onRecord: () => undefined });
    reg.loadDir(dir);
    for (const d of decoderList(reg) as Array<{ name: string; version: string; protocols: string[]; ports: number[]; sha256: string }>) {
      process.stdout.write(`${d.name.padEnd(10)} ${d.version.padEnd(8)} ${d.protocols.join(',').padEnd(20)} ports=${d.ports.join(',')} sha256=${d.sha256.slice(0, 16)}\n`);
    }
    return 0;
  }
  if (sub === 'verify' && file) {
    try {
      const inst = DecoderInstance.fromBytes(readInput(file, 'module'), { onRecord: () => undefined });
      process.stdout.write(`ok: ${inst.meta.name} ${inst.meta.version} (${inst.meta.protocols.join(', ')})\n`);
      return 0;
    } catch (e) {
      process.stderr.write(`refused: ${e instanceof DecoderLoadError ? e.message : (e as Error).message}\n`);
      return 1;
    }
  }
  if (sub === 'sign' && file && typeof args.flags.key === 'string') {
    let sig: string;
    const bytes = readInput(file, 'module');
    const key = readInput(args.flags.key, 'key').toString('utf8');
    try { sig = signModule(bytes, key); } catch (e) {
      throw Object.assign(new Error(`cannot sign with ${args.flags.key}: ${(e as Error).message}`), { userFacing: true });
    }
    fs.writeFileSync(`${file}.sig`, sig + '\n');
    process.stdout.write(`${file}.sig\n`);
    return 0;
  }
  if (sub === 'load' && file) {
    const bytes = readInput(file, 'module');
    // The name is the file's (NAME.wasm), as in a watched directory; the agent checks that the
    // module's meta() agrees. The CLI never runs the untrusted module itself.
    const name = typeof args.flags.name === 'string' ? args.flags.name : path.basename(file).replace(/\.wasm$/, '');
    const sigFile = typeof args.flags.signature === 'string' ? args.flags.signature : fs.existsSync(`${file}.sig`) ? `${file}.sig` : undefined;
    const extra: Record<string, string> = { 'content-type': 'application/wasm' };
    if (sigFile) extra['x-telegen-signature'] = readInput(sigFile, 'signature').toString('utf8').trim();
    return call(args, 'PUT', `/api/decoders/${name}`, bytes, extra);
  }
  if (sub === 'rollback' && file) return call(args, 'POST', `/api/decoders/${encodeURIComponent(file)}/rollback`);
  process.stderr.write(USAGE);
  return 2;
}
