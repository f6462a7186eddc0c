// What the Go tracer did with each Go executable it found, for /api/discovery and `doctor`:
// instrumented or, when not, why. Written by the tracer, read by the API.

export interface GoBinaryStatus {
  path: string;
  goVersion?: string;
  symbols?: 'symtab' | 'pclntab';
  instrumented: boolean;
  /** Why not, when not instrumented. */
  reason?: string;
  /** Uprobes attached (entries + return instructions). */
  probes: number;
  pids: number[];
  attachMs?: number;
  /** Goroutine-aware net/http requests (gotrace/goroutines.ts): hooked, or why not. */
  goroutines?: { instrumented: boolean; probes: number; reason?: string };
  /** HTTP/2 header fields from Go's HPACK code (gotrace/http2.ts): hooked, or why not. */
  http2?: { instrumented: boolean; probes: number; reason?: string };
}

let current: (() => GoBinaryStatus[]) | undefined;

export function setGoStatusSource(f: (() => GoBinaryStatus[]) | undefined): void {
  current = f;
}

/** undefined while the Go tracer is not running. */
export function goStatus(): GoBinaryStatus[] | undefined {
  return current?.();
}
