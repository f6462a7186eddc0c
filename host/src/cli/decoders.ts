// `telegen decoders list|verify|load`.
import * as fs from 'fs';
import { Args } from './main';
import { DecoderInstance, DecoderLoadError } from '../decoders/instance';
import { DecoderRegistry, defaultDecodersDir } from '../decoders/registry';
import { decoderList } from '../api/server';

export async function decodersCommand(args: Args): Promise<number> {
  const sub = args._[0];
  if (sub === 'list') {
    const reg = new DecoderRegistry({ onRecord: () => undefined });
    reg.loadDir(typeof args.flags.dir === 'string' ? args.flags.dir : defaultDecodersDir());
    for (const d of decoderList(reg) as Array<{ name: string; version: string; protocols: string[]; ports: number[]; sha256: string }>) {
      process.stdout.write(`${d.name.padEnd(10)} ${d.version.padEnd(8)} ${d.protocols.join(',').padEnd(20)} ports=${d.ports.join(',')} sha256=${d.sha256.slice(0, 16)}\n`);
    }
    return 0;
  }
  if (sub === 'verify') {
    const file = args._[1];
    if (!file) { process.stderr.write('telegen decoders verify FILE.wasm\n'); return 2; }
    try {
      const inst = DecoderInstance.fromBytes(fs.readFileSync(file), { onRecord: () => undefined });
      process.stdout.write(`ok: ${inst.meta.name} ${inst.meta.version} (${inst.meta.protocols.join(', ')})\n`);
      return 0;
    } catch (e) {
      process.stderr.write(`refused: ${e instanceof DecoderLoadError ? e.message : (e as Error).message}\n`);
      return 1;
    }
  }
  if (sub === 'load') {
    const file = args._[1];
    const api = typeof args.flags.api === 'string' ? args.flags.api : (process.env.TELEGEN_API_LISTEN || '127.0.0.1:9464');
    if (!file) { process.stderr.write('telegen decoders load FILE.wasm [--api HOST:PORT]\n'); return 2; }
    const bytes = fs.readFileSync(file);
    const inst = DecoderInstance.fromBytes(bytes, { onRecord: () => undefined });
    const headers: Record<string, string> = { 'content-type': 'application/wasm' };
    if (process.env.TELEGEN_API_TOKEN) headers.authorization = `Bearer ${process.env.TELEGEN_API_TOKEN}`;
    if (typeof args.flags.signature === 'string') headers['x-telegen-signature'] = fs.readFileSync(args.flags.signature, 'utf8').trim();
    const res = await fetch(`http://${api}/api/decoders/${inst.meta.name}`, { method: 'PUT', body: bytes, headers });
    const text = await res.text();
    process.stdout.write(`${res.status} ${text}\n`);
    return res.ok ? 0 : 1;
  }
  process.stderr.write('usage: telegen decoders list|verify FILE.wasm|load FILE.wasm\n');
  return 2;
}
