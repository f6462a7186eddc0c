// `telegen decoders list|verify|sign|load|rollback`.
import * as fs from 'fs';
import * as path from 'path';
import { Args } from './main';
import { DecoderInstance, DecoderLoadError } from '../decoders/instance';
import { DecoderRegistry, defaultDecodersDir } from '../decoders/registry';
import { signModule } from '../decoders/policy';
import { decoderList } from '../api/server';

const USAGE = `usage:
  telegen decoders list [--dir DIR]
  telegen decoders verify FILE.wasm
  telegen decoders sign FILE.wasm --key ED25519_PRIVATE.pem        (writes FILE.wasm.sig)
  telegen decoders load NAME.wasm [--name NAME] [--signature FILE.sig] [--api HOST:PORT] [--token-file F | --data-dir DIR]
  telegen decoders rollback NAME [--api HOST:PORT] [--token-file F | --data-dir DIR]
`;

function token(args: Args): string | undefined {
  if (process.env.TELEGEN_API_TOKEN) return process.env.TELEGEN_API_TOKEN;
  const f = typeof args.flags['token-file'] === 'string' ? args.flags['token-file']
    : path.join(typeof args.flags['data-dir'] === 'string' ? args.flags['data-dir'] : (process.env.TELEGEN_DATA_DIR || '/var/lib/telegen'), 'api-token');
  try { return fs.readFileSync(f, 'utf8').trim(); } catch { return undefined; }
}

function api(args: Args): string {
  return typeof args.flags.api === 'string' ? args.flags.api : (process.env.TELEGEN_API_LISTEN || '127.0.0.1:9464');
}

async function call(args: Args, method: string, p: string, body?: Uint8Array, extra: Record<string, string> = {}): Promise<number> {
  const headers: Record<string, string> = { ...extra };
  const t = token(args);
  if (t) headers.authorization = `Bearer ${t}`;
  let res: Response;
  try {
    res = await fetch(`http://${api(args)}${p}`, { method, body, headers });
  } catch (e) {
    process.stderr.write(`telegen: cannot reach the agent API at ${api(args)}: ${(e as Error).message}\n`);
    return 1;
  }
  const text = await res.text();
  (res.ok ? process.stdout : process.stderr).write(`${res.status} ${text}\n`);
  return res.ok ? 0 : 1;
}

export async function decodersCommand(args: Args): Promise<number> {
  const sub = args._[0];
  const file = args._[1];
  if (sub === 'list') {
    const reg = new DecoderRegistry({ onRecord: () => undefined });
    reg.loadDir(typeof args.flags.dir === 'string' ? args.flags.dir : defaultDecodersDir());
    for (const d of decoderList(reg) as Array<{ name: string; version: string; protocols: string[]; ports: number[]; sha256: string }>) {
      process.stdout.write(`${d.name.padEnd(10)} ${d.version.padEnd(8)} ${d.protocols.join(',').padEnd(20)} ports=${d.ports.join(',')} sha256=${d.sha256.slice(0, 16)}\n`);
    }
    return 0;
  }
  if (sub === 'verify' && file) {
    try {
      const inst = DecoderInstance.fromBytes(fs.readFileSync(file), { onRecord: () => undefined });
      process.stdout.write(`ok: ${inst.meta.name} ${inst.meta.version} (${inst.meta.protocols.join(', ')})\n`);
      return 0;
    } catch (e) {
      process.stderr.write(`refused: ${e instanceof DecoderLoadError ? e.message : (e as Error).message}\n`);
      return 1;
    }
  }
  if (sub === 'sign' && file && typeof args.flags.key === 'string') {
    const sig = signModule(fs.readFileSync(file), fs.readFileSync(args.flags.key, 'utf8'));
    fs.writeFileSync(`${file}.sig`, sig + '\n');
    process.stdout.write(`${file}.sig\n`);
    return 0;
  }
  if (sub === 'load' && file) {
    const bytes = fs.readFileSync(file);
    // The name is the file's (NAME.wasm), as in a watched directory; the agent checks that the
    // module's meta() agrees. The CLI never runs the untrusted module itself.
    const name = typeof args.flags.name === 'string' ? args.flags.name : path.basename(file).replace(/\.wasm$/, '');
    const sigFile = typeof args.flags.signature === 'string' ? args.flags.signature : fs.existsSync(`${file}.sig`) ? `${file}.sig` : undefined;
    const extra: Record<string, string> = { 'content-type': 'application/wasm' };
    if (sigFile) extra['x-telegen-signature'] = fs.readFileSync(sigFile, 'utf8').trim();
    return call(args, 'PUT', `/api/decoders/${name}`, bytes, extra);
  }
  if (sub === 'rollback' && file) return call(args, 'POST', `/api/decoders/${encodeURIComponent(file)}/rollback`);
  process.stderr.write(USAGE);
  return 2;
}
