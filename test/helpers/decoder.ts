// Test harness: load a built decoder (build/decoders/<name>.wasm) and collect what it emits.
import * as fs from 'fs';
import * as path from 'path';
import { DecoderInstance } from '../../host/src/decoders/instance';
import { DecodedRecord } from '../../host/src/decoders/records';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');

export interface Harness {
  inst: DecoderInstance;
  records: DecodedRecord[];
  logs: string[];
}

export function wasmPath(name: string): string {
  return path.join(repoRoot, 'build', 'decoders', `${name}.wasm`);
}

export function loadDecoder(name: string): Harness {
  const records: DecodedRecord[] = [];
  const logs: string[] = [];
  const inst = DecoderInstance.fromBytes(fs.readFileSync(wasmPath(name)), {
    onRecord: (r) => records.push(r),
    onLog: (_l, m) => logs.push(m),
  });
  return { inst, records, logs };
}

/** Feeds a whole exchange split into pieces of `chunk` bytes (tests split-read robustness). */
export function feedChunked(h: Harness, stream: number, dir: number, data: Uint8Array | string, chunk: number, ts = 1000n): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  for (let i = 0; i < bytes.length; i += chunk) h.inst.feed(stream, dir, bytes.subarray(i, i + chunk), ts + BigInt(i));
}

export const corpusDir = process.env.TELEGEN_CORPUS || path.resolve(repoRoot, '..', 'shared', 'corpus');
