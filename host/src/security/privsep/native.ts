// Typed view of native/src/privsep.cc and of the socket tracer's loader-only calls.
import { loadNative } from '../../native';

export interface PrivsepNative {
  sendFds(sock: number, fds: number[], frame: Buffer): number;
  connectReceive(path: string, timeoutMs: number): { fd: number; fds: number[]; frame: Buffer };
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  setNoNewPrivs(emptyBounding?: boolean): void;
  closeFd(fd: number): void;
  /** fds of the BPF maps this process holds under these names. */
  mapFdsByName(names: string[]): Record<string, number>;
  mapSumPerCpu(fd: number, keys: number): number[];
  mapCountKeys(fd: number): number;
  RingConsumer: new (fd: number, size: number, handler: (count: number) => void) => {
    readonly ring: Uint8Array | null;
    readonly index: Uint32Array | null;
    stats(): { batches: number; records: number; ringPendingBytes: number };
    setPaused(paused: boolean): void;
    setMaxBatch(n: number): void;
    close(): void;
  };
}

export interface LoaderSocketTracer {
  open(opts: object, handler: (count: number) => void): import('../../native').AttachReport;
  mapFds(): { ring: number; stats: number; conns: number };
  close(): void;
}

export function privsepNative(): PrivsepNative {
  return loadNative() as unknown as PrivsepNative;
}

export function loaderSocketTracer(): LoaderSocketTracer {
  return new (loadNative().SocketTracer)() as unknown as LoaderSocketTracer;
}
