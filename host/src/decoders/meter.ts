// CPU budget for untrusted decoders, enforced inside the module: the binary is rewritten so that
// every function entry and every loop iteration decrements an exported global ("fuel"); at zero
// the module executes `unreachable` and traps. Every unbounded computation in Wasm needs either a
// loop or a call (recursion, tail calls), so a call that runs out of fuel always stops — a bound
// we can prove from the bytecode, without threads or timers. Instructions the rewriter does not
// know (e.g. exception handling) make it refuse the module rather than run it unmetered.
// The budget is restored inside the module: every exported function is reached through a new
// wrapper that sets the fuel and calls it (a host-side WebAssembly.Global write costs ~100 ns, as
// much as decoding a small message). Only the host can reach a wrapper (no code or table refers
// to it), so the module cannot refuel itself.

export const FUEL_EXPORT = 'telegen_fuel';

export class MeterError extends Error {}

export class Reader {
  p: number;
  constructor(readonly b: Uint8Array, p = 0) { this.p = p; }
  byte(): number {
    if (this.p >= this.b.length) throw new MeterError('unexpected end of module');
    return this.b[this.p++];
  }
  u32(): number {
    let r = 0, shift = 0, b: number;
    do {
      b = this.byte();
      if (shift < 32) r |= (b & 0x7f) << shift;
      shift += 7;
      if (shift > 35) throw new MeterError('LEB128 too long');
    } while (b & 0x80);
    return r >>> 0;
  }
  /** Skips a signed or unsigned LEB128 of at most `maxBytes` bytes. */
  skipLeb(maxBytes: number): void {
    for (let i = 0; i < maxBytes; i++) if (!(this.byte() & 0x80)) return;
    throw new MeterError('LEB128 too long');
  }
  skip(n: number): void {
    if (this.p + n > this.b.length) throw new MeterError('unexpected end of module');
    this.p += n;
  }
}

export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function blockType(r: Reader): void {
  const b = r.b[r.p];
  if (b === 0x40 || b === 0x7f || b === 0x7e || b === 0x7d || b === 0x7c || b === 0x7b || b === 0x70 || b === 0x6f) { r.p++; return; }
  r.skipLeb(5); // s33 type index
}

function memarg(r: Reader): void {
  const align = r.u32();
  if (align & 0x40) r.u32(); // multi-memory: explicit memory index
  r.u32();
}

/** Walks one instruction after its opcode byte; calls onLoop after a loop's block type. */
export function skipInstr(r: Reader, op: number, onLoop: () => void): void {
  if (op === 0x02 || op === 0x04) return blockType(r);
  if (op === 0x03) { blockType(r); onLoop(); return; }
  if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b) return;
  if (op === 0x0c || op === 0x0d || op === 0x10 || op === 0x12) { r.u32(); return; }
  if (op === 0x0e) { const n = r.u32(); for (let i = 0; i <= n; i++) r.u32(); return; }
  if (op === 0x11 || op === 0x13) { r.u32(); r.u32(); return; }
  if (op === 0x1c) { const n = r.u32(); r.skip(n); return; }
  if (op >= 0x20 && op <= 0x26) { r.u32(); return; }
  if (op >= 0x28 && op <= 0x3e) { memarg(r); return; }
  if (op === 0x3f || op === 0x40) { r.u32(); return; }
  if (op === 0x41) { r.skipLeb(5); return; }
  if (op === 0x42) { r.skipLeb(10); return; }
  if (op === 0x43) { r.skip(4); return; }
  if (op === 0x44) { r.skip(8); return; }
  if (op >= 0x45 && op <= 0xc4) return;
  if (op === 0xd0) { r.byte(); return; }
  if (op === 0xd1) return;
  if (op === 0xd2) { r.u32(); return; }
  if (op === 0xfc) {
    const sub = r.u32();
    if (sub <= 7) return;
    if (sub === 8) { r.u32(); r.u32(); return; }
    if (sub === 9 || sub === 11 || sub === 13 || (sub >= 15 && sub <= 17)) { r.u32(); return; }
    if (sub === 10 || sub === 12 || sub === 14) { r.u32(); r.u32(); return; }
    throw new MeterError(`unsupported instruction 0xfc ${sub}`);
  }
  if (op === 0xfd) {
    const sub = r.u32();
    if (sub <= 11 || sub === 92 || sub === 93) { memarg(r); return; }
    if (sub === 12 || sub === 13) { r.skip(16); return; }
    if (sub >= 21 && sub <= 34) { r.byte(); return; }
    if (sub >= 84 && sub <= 91) { memarg(r); r.byte(); return; }
    if (sub <= 0x113) return; // the remaining SIMD opcodes carry no immediates
    throw new MeterError(`unsupported SIMD instruction ${sub}`);
  }
  if (op === 0xfe) {
    const sub = r.u32();
    if (sub === 0x03) { r.byte(); return; }
    if (sub <= 0x4e) { memarg(r); return; }
    throw new MeterError(`unsupported atomic instruction ${sub}`);
  }
  throw new MeterError(`unsupported instruction 0x${op.toString(16)} (exception handling and other proposals are refused)`);
}

/** if fuel == 0 { unreachable } fuel -= 1 */
function fuelCheck(g: number): number[] {
  const gi = leb(g);
  return [0x23, ...gi, 0x45, 0x04, 0x40, 0x00, 0x0b, 0x23, ...gi, 0x41, 0x01, 0x6b, 0x24, ...gi];
}

/** Whether a body contains a call of any kind (the opcodes skipInstr accepts: call,
 *  call_indirect, return_call, return_call_indirect). */
function makesCalls(body: Uint8Array, start: number): boolean {
  const r = new Reader(body, start);
  let calls = false;
  while (r.p < body.length) {
    const op = r.byte();
    if (op >= 0x10 && op <= 0x13) calls = true;
    skipInstr(r, op, () => undefined);
  }
  return calls;
}

/**
 * Every loop iteration pays a check; a function entry only when the function makes calls or the
 * host can call it. A leaf (no call of any kind) runs its body at most once per entry outside its
 * (checked) loops, and only a function that makes calls can enter it: the work between two checks
 * stays bounded by two bodies, and recursion or an endless chain of calls still passes a check
 * per call. Leaves are the small helpers called per field and per message (measured on the
 * PostgreSQL decoder: a quarter of its entry checks).
 */
function meterBody(body: Uint8Array, g: number, exported: boolean): Uint8Array {
  const r = new Reader(body);
  const nLocalDecls = r.u32();
  for (let i = 0; i < nLocalDecls; i++) { r.u32(); r.byte(); }
  const out = new Bytes(body.length + (body.length >> 2) + 32);
  const check = fuelCheck(g);
  out.append(body.subarray(0, r.p));
  if (exported || makesCalls(body, r.p)) out.append(check);
  let last = r.p;
  while (r.p < body.length) {
    const op = r.byte();
    skipInstr(r, op, () => {
      out.append(body.subarray(last, r.p));
      out.append(check);
      last = r.p;
    });
  }
  out.append(body.subarray(last));
  return out.bytes();
}

/** Growable byte buffer: module sections can be far larger than spread/apply argument limits.
 *  Sized by the caller: a 64 KiB start per function body was ~10 MiB of garbage per load of the
 *  six decoders, and part of the agent's start-up peak RSS (bench/README.md "Start-up peak RSS"). */
export class Bytes {
  buf: Uint8Array;
  len = 0;
  constructor(capacity = 256) { this.buf = new Uint8Array(capacity); }
  push(...xs: number[]): void { this.append(xs); }
  append(xs: ArrayLike<number>): void {
    if (this.len + xs.length > this.buf.length) {
      const nb = new Uint8Array(Math.max(this.buf.length * 2, this.len + xs.length));
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
    if (xs instanceof Uint8Array) this.buf.set(xs, this.len);
    else for (let i = 0; i < xs.length; i++) this.buf[this.len + i] = xs[i];
    this.len += xs.length;
  }
  bytes(): Uint8Array { return this.buf.slice(0, this.len); }
}

function section(id: number, payload: ArrayLike<number>): Bytes {
  const b = new Bytes(payload.length + 6);
  b.push(id);
  b.append(leb(payload.length));
  b.append(payload);
  return b;
}

/** Returns the metered module bytes. Throws MeterError when the module cannot be metered. */
export function meterModule(bytes: Uint8Array, initialFuel = 0): Uint8Array {
  return rewriteModule(bytes, {
    globals: [[0x7f, 0x01, 0x41, ...sleb(initialFuel), 0x0b]],
    exports: [{ name: FUEL_EXPORT, global: 0 }],
    body: (body, g, exported) => meterBody(body, g, exported),
    exportEntry: (g) => [0x41, ...sleb(initialFuel), 0x24, ...leb(g)],
  });
}

/**
 * A rewrite of every function body that may use new mutable globals (appended after the module's
 * own, so no existing index moves) and export them. The metering above is one; the fuzzer's
 * coverage counters (test/fuzz/coverage.ts) are another.
 */
export interface BodyRewrite {
  /** Global entries (value type, mutability, init expression) to append. */
  globals: number[][];
  /** Exports of the new globals; `global` indexes `globals`. */
  exports: Array<{ name: string; global: number }>;
  /** Rewrites one body; `firstGlobal` is the index of globals[0]; `exported`: the host can call
   *  this function (it is exported). */
  body(body: Uint8Array, firstGlobal: number, exported: boolean): Uint8Array;
  /** Code run on every call from outside: exported functions are re-exported through wrappers
   *  that run it, then call the original with the same arguments. */
  exportEntry?(firstGlobal: number): number[];
}

interface ModuleSpace {
  importedGlobals: number;
  definedGlobals: number;
  /** Parameter count per type index (read only when asked for). */
  params: number[];
  importedFuncs: number;
  /** Type index of each defined function. */
  funcTypes: number[];
}

/** Index spaces of the module: globals (where new ones go) and, with `types`, functions. */
function moduleSpace(bytes: Uint8Array, sections: Array<{ id: number; start: number; end: number }>, types: boolean): ModuleSpace {
  const fs: ModuleSpace = { importedGlobals: 0, definedGlobals: 0, params: [], importedFuncs: 0, funcTypes: [] };
  for (const s of sections) {
    const sr = new Reader(bytes.subarray(0, s.end), s.start);
    if (s.id === 1 && types) {
      const n = sr.u32();
      for (let i = 0; i < n; i++) {
        if (sr.byte() !== 0x60) throw new MeterError('unsupported type form (only function types)');
        const np = sr.u32(); sr.skip(np);
        const nr = sr.u32(); sr.skip(nr);
        fs.params.push(np);
      }
    } else if (s.id === 2) {
      const n = sr.u32();
      for (let i = 0; i < n; i++) {
        sr.skip(sr.u32()); sr.skip(sr.u32());
        const kind = sr.byte();
        if (kind === 0) { sr.u32(); fs.importedFuncs++; }
        else if (kind === 1) { sr.byte(); const f = sr.byte(); sr.u32(); if (f & 1) sr.u32(); }
        else if (kind === 2) { const f = sr.byte(); sr.u32(); if (f & 1) sr.u32(); }
        else if (kind === 3) { sr.byte(); sr.byte(); fs.importedGlobals++; }
        else throw new MeterError(`unsupported import kind ${kind}`);
      }
    } else if (s.id === 6) fs.definedGlobals = sr.u32();
    else if (s.id === 3) {
      const n = sr.u32();
      for (let i = 0; i < n; i++) fs.funcTypes.push(sr.u32());
    }
  }
  return fs;
}

function typeOf(fs: ModuleSpace, func: number): number {
  const t = fs.funcTypes[func - fs.importedFuncs];
  if (t === undefined || fs.params[t] === undefined) throw new MeterError(`exported function ${func} has no type`);
  return t;
}

export function rewriteModule(bytes: Uint8Array, rw: BodyRewrite): Uint8Array {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new MeterError('not a WebAssembly module');
  const r = new Reader(bytes, 8);
  const sections: Array<{ id: number; start: number; end: number }> = [];
  while (r.p < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    sections.push({ id, start: r.p, end: r.p + size });
    r.skip(size);
  }
  const fspace = moduleSpace(bytes, sections, !!rw.exportEntry);
  // Index of the new global: after imported and defined globals.
  const g = fspace.importedGlobals + fspace.definedGlobals;
  // Wrappers for exported functions, appended after every defined function (no index moves).
  const exported: number[] = [];
  for (const s of sections.filter((x) => x.id === 7)) {
    const sr = new Reader(bytes.subarray(0, s.end), s.start);
    const n = sr.u32();
    for (let i = 0; i < n; i++) {
      sr.skip(sr.u32());
      const kind = sr.byte();
      const idx = sr.u32();
      // A re-exported import runs no module code: it needs no budget.
      if (kind === 0 && idx >= fspace.importedFuncs && !exported.includes(idx)) exported.push(idx);
    }
  }
  const wrapped = rw.exportEntry ? exported : [];
  const wrapperIndex = (func: number) => fspace.importedFuncs + fspace.funcTypes.length + wrapped.indexOf(func);
  const newGlobals = new Bytes();
  for (const e of rw.globals) newGlobals.append(e);
  const newExports = new Bytes();
  for (const e of rw.exports) newExports.append(exportEntry(e.name, g + e.global));
  const out = new Bytes(bytes.length + (bytes.length >> 3) + 256);
  out.append(bytes.subarray(0, 8));
  const put = (b: Bytes) => out.append(b.bytes());
  let sawGlobal = false;
  let sawExport = false;
  const emitGlobalSectionIfMissing = (beforeId: number) => {
    // Sections must stay in order: the global section (6) comes before export (7).
    if (!sawGlobal && beforeId > 6) { put(section(6, [...leb(rw.globals.length), ...newGlobals.bytes()])); sawGlobal = true; }
  };
  const emitExportSectionIfMissing = (beforeId: number) => {
    if (!sawExport && beforeId > 7) { put(section(7, [...leb(rw.exports.length), ...newExports.bytes()])); sawExport = true; }
  };
  for (const s of sections) {
    const payload = bytes.subarray(s.start, s.end);
    if (s.id !== 0) { emitGlobalSectionIfMissing(s.id); emitExportSectionIfMissing(s.id); }
    if (s.id === 0) {
      // Custom sections: keep "name" (indices are unchanged); drop source maps and DWARF, whose
      // code offsets the rewrite invalidates.
      const cr = new Reader(payload);
      const nlen = cr.u32();
      const name = Buffer.from(payload.subarray(cr.p, cr.p + nlen)).toString('utf8');
      if (name === 'name') put(section(0, payload));
    } else if (s.id === 6) {
      const sr = new Reader(payload);
      const n = sr.u32();
      const b = new Bytes(); b.append(leb(n + rw.globals.length)); b.append(payload.subarray(sr.p)); b.append(newGlobals.bytes());
      put(section(6, b.bytes()));
      sawGlobal = true;
    } else if (s.id === 3 && wrapped.length) {
      const sr = new Reader(payload);
      const n = sr.u32();
      const b = new Bytes(); b.append(leb(n + wrapped.length)); b.append(payload.subarray(sr.p));
      for (const f of wrapped) b.append(leb(typeOf(fspace!, f)));
      put(section(3, b.bytes()));
    } else if (s.id === 7) {
      const sr = new Reader(payload);
      const n = sr.u32();
      const b = new Bytes(); b.append(leb(n + rw.exports.length));
      if (!wrapped.length) b.append(payload.subarray(sr.p));
      else {
        for (let i = 0; i < n; i++) {
          const nameStart = sr.p;
          sr.skip(sr.u32());
          b.append(payload.subarray(nameStart, sr.p));
          const kind = sr.byte();
          const idx = sr.u32();
          b.append([kind, ...leb(kind === 0 && wrapped.includes(idx) ? wrapperIndex(idx) : idx)]);
        }
      }
      b.append(newExports.bytes());
      put(section(7, b.bytes()));
      sawExport = true;
    } else if (s.id === 10) {
      const sr = new Reader(payload);
      const n = sr.u32();
      const bodies = new Bytes(payload.length + (payload.length >> 2) + 256);
      bodies.append(leb(n + wrapped.length));
      for (let i = 0; i < n; i++) {
        const size = sr.u32();
        const body = payload.subarray(sr.p, sr.p + size);
        sr.skip(size);
        const rewritten = rw.body(body, g, exported.includes(fspace.importedFuncs + i));
        bodies.append(leb(rewritten.length));
        bodies.append(rewritten);
      }
      for (const f of wrapped) {
        // no locals; the entry code; every parameter passed on; the original's results returned
        const w: number[] = [0x00, ...rw.exportEntry!(g)];
        const np = fspace.params[typeOf(fspace!, f)];
        for (let i = 0; i < np; i++) w.push(0x20, ...leb(i));
        w.push(0x10, ...leb(f), 0x0b);
        bodies.append(leb(w.length));
        bodies.append(w);
      }
      put(section(10, bodies.bytes()));
    } else {
      put(section(s.id, payload));
    }
  }
  emitGlobalSectionIfMissing(99);
  emitExportSectionIfMissing(99);
  return out.bytes();
}

function exportEntry(exportName: string, g: number): number[] {
  const name = Buffer.from(exportName, 'utf8');
  return [...leb(name.length), ...name, 0x03, ...leb(g)];
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && (b & 0x40))) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}
