// Every protocol decoder the agent runs: loaded from .wasm files, verified, indexed by port hint.
import * as fs from 'fs';
import * as path from 'path';
import { DecoderInstance, InstanceHooks, VerifyPolicy, DEFAULT_VERIFY_POLICY } from './instance';
import { log } from '../log';
import { installRoot } from '../paths';

const dlog = log.child({ component: 'decoders' });

export interface LoadedDecoder {
  name: string;
  file: string;
  sha256: string;
  inst: DecoderInstance;
  loadedAt: number;
}

export function defaultDecodersDir(): string {
  return process.env.TELEGEN_DECODERS_DIR || path.join(installRoot(), 'build', 'decoders');
}

export class DecoderRegistry {
  readonly decoders = new Map<string, LoadedDecoder>();
  private readonly byPort = new Map<number, string[]>();

  constructor(private readonly hooks: InstanceHooks, private readonly policy: VerifyPolicy = DEFAULT_VERIFY_POLICY) {}

  loadDir(dir: string, disabled: string[] = []): void {
    let files: string[];
    try { files = fs.readdirSync(dir).filter((f) => f.endsWith('.wasm')).sort(); } catch (e) {
      dlog.error({ dir, err: (e as Error).message }, 'decoder directory unreadable; no protocol will be decoded');
      return;
    }
    for (const f of files) {
      const name = path.basename(f, '.wasm');
      if (disabled.includes(name)) continue;
      try { this.loadFile(path.join(dir, f)); } catch (e) {
        dlog.error({ file: f, err: (e as Error).message }, 'decoder refused');
      }
    }
  }

  loadFile(file: string): LoadedDecoder {
    const bytes = fs.readFileSync(file);
    return this.add(bytes, file);
  }

  add(bytes: Uint8Array, file: string): LoadedDecoder {
    const inst = DecoderInstance.fromBytes(bytes, this.hooks, this.policy);
    const sha256 = require('crypto').createHash('sha256').update(bytes).digest('hex');
    const d: LoadedDecoder = { name: inst.meta.name, file, sha256, inst, loadedAt: Date.now() };
    this.decoders.set(d.name, d);
    this.reindex();
    dlog.info({ decoder: d.name, version: inst.meta.version, sha256: sha256.slice(0, 16) }, 'decoder loaded');
    return d;
  }

  private reindex(): void {
    this.byPort.clear();
    for (const d of this.decoders.values()) {
      for (const p of d.inst.meta.ports ?? []) {
        const l = this.byPort.get(p) ?? [];
        l.push(d.name);
        this.byPort.set(p, l);
      }
    }
  }

  addPortHints(hints: Record<string, number[]>): void {
    for (const [name, ports] of Object.entries(hints)) {
      for (const p of ports) {
        const l = this.byPort.get(p) ?? [];
        if (!l.includes(name)) l.unshift(name);
        this.byPort.set(p, l);
      }
    }
  }

  /** Decoders to try for a connection: port-hinted ones first, then the rest. */
  candidates(serverPort: number, transport: 'tcp' | 'udp'): LoadedDecoder[] {
    const hinted = this.byPort.get(serverPort) ?? [];
    const out: LoadedDecoder[] = [];
    for (const n of hinted) { const d = this.decoders.get(n); if (d) out.push(d); }
    for (const d of this.decoders.values()) if (!hinted.includes(d.name)) out.push(d);
    return out.filter((d) => {
      const t = d.inst.meta.transport ?? 'tcp';
      return t === 'both' || t === transport;
    });
  }

  get(name: string): LoadedDecoder | undefined { return this.decoders.get(name); }
}
