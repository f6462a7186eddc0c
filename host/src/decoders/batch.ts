// Reads of several streams bound for one decoder, collected while a ring batch is routed and fed
// in one call where the module exports parse_batch (decoders/abi/README.md, "Batches"). Columns
// reused from batch to batch: a ring batch carries thousands of reads.

export class ChunkBatch<T = unknown> {
  n = 0;
  readonly stream: number[] = [];
  readonly dir: number[] = [];
  readonly bytes: Uint8Array[] = [];
  readonly ts: bigint[] = [];
  /** The caller's handle of each read (the router's connection). */
  readonly tag: T[] = [];

  push(stream: number, dir: number, bytes: Uint8Array, ts: bigint, tag: T): void {
    const i = this.n++;
    this.stream[i] = stream;
    this.dir[i] = dir;
    this.bytes[i] = bytes;
    this.ts[i] = ts;
    this.tag[i] = tag;
  }

  /** Forgets the reads (the byte views point into the ring: they must not outlive the batch). */
  clear(): void {
    for (let i = 0; i < this.n; i++) { this.bytes[i] = EMPTY; this.tag[i] = undefined as T; }
    this.n = 0;
  }
}

const EMPTY = new Uint8Array(0);
