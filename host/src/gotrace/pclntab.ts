// Function entry points from Go's pclntab, the table the runtime itself uses for stack traces:
// it survives `-ldflags=-s -w` and `strip`, so stripped binaries still name every function.
// Layouts (src/debug/gosym/pclntab.go, src/runtime/symtab.go):
//   Go 1.2–1.15  magic 0xfffffffb: functab {entry uintptr, funcoff uintptr}, names relative to the table
//   Go 1.16–1.17 magic 0xfffffffa: header with offsets of funcnametab and functab; entry uintptr
//   Go 1.18–1.19 magic 0xfffffff0, 1.20+ 0xfffffff1: as 1.16 plus textStart; entries are u32 offsets from it
import { ElfFile, section, sectionBytes } from './elf';

export interface GoFunc { name: string; entry: number; end: number }

export interface Pclntab { magic: number; ptrSize: number; funcs: GoFunc[] }

const MAGICS = new Set([0xfffffffb, 0xfffffffa, 0xfffffff0, 0xfffffff1]);

function reader(b: Buffer, le: boolean, ptrSize: number) {
  return {
    u32: (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o)),
    ptr: (o: number) => (ptrSize === 8 ? Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)) : (le ? b.readUInt32LE(o) : b.readUInt32BE(o))),
  };
}

function cstr(b: Buffer, at: number): string {
  if (at < 0 || at >= b.length) return '';
  const end = b.indexOf(0, at);
  return b.toString('latin1', at, end < 0 ? b.length : end);
}

/** Parses a pclntab that starts at `b[0]`; throws on anything inconsistent. */
export function parsePclntab(b: Buffer, le: boolean, textAddr: number): Pclntab {
  const magic = le ? b.readUInt32LE(0) : b.readUInt32BE(0);
  if (!MAGICS.has(magic) || b[4] !== 0 || b[5] !== 0 || ![1, 2, 4].includes(b[6]) || ![4, 8].includes(b[7])) throw new Error('not a pclntab');
  const ptrSize = b[7];
  const { u32, ptr } = reader(b, le, ptrSize);
  const nfunc = ptr(8);
  if (nfunc <= 0 || nfunc > 10_000_000) throw new Error('pclntab: implausible function count');
  const entries: Array<{ entry: number; name: string }> = [];
  let end: number;
  if (magic === 0xfffffffb) {
    const tab = 8 + ptrSize;
    for (let i = 0; i < nfunc; i++) {
      const e = tab + i * 2 * ptrSize;
      const f = ptr(e + ptrSize);
      entries.push({ entry: ptr(e), name: cstr(b, u32(f + ptrSize)) });
    }
    end = ptr(tab + nfunc * 2 * ptrSize);
  } else {
    const h = (i: number) => ptr(8 + i * ptrSize);
    const modern = magic !== 0xfffffffa;
    // 1.18+: [nfunc, nfiles, textStart, funcname, cu, filetab, pctab, pcln]; 1.16: no textStart.
    const textStart = modern ? (h(2) || textAddr) : 0; // PIE leaves textStart to a relocation
    const funcnameOff = h(modern ? 3 : 2);
    const pclnOff = h(modern ? 7 : 6);
    const fieldSize = modern ? 4 : ptrSize; // functab pair member and _func.entry size
    const at = (o: number) => (modern ? u32(o) : ptr(o));
    for (let i = 0; i < nfunc; i++) {
      const e = pclnOff + i * 2 * fieldSize;
      const f = pclnOff + at(e + fieldSize);
      const nameOff = u32(f + fieldSize);
      entries.push({ entry: textStart + at(e), name: cstr(b, funcnameOff + nameOff) });
    }
    end = textStart + at(pclnOff + nfunc * 2 * fieldSize);
  }
  const funcs: GoFunc[] = entries.map((e, i) => ({ name: e.name, entry: e.entry, end: i + 1 < entries.length ? entries[i + 1].entry : end }));
  for (const f of funcs) if (!(f.end >= f.entry)) throw new Error('pclntab: entries not sorted');
  return { magic, ptrSize, funcs };
}

/**
 * Finds the pclntab of an ELF Go binary: the .gopclntab section, else (PIE and internal-linked
 * binaries keep it inside .data.rel.ro, or section names were rewritten) the first place in a
 * read-only data section where a header parses and its first entry is the start of .text.
 */
export function findPclntab(elf: ElfFile): Pclntab | undefined {
  const text = section(elf, '.text');
  const textAddr = text?.addr ?? 0;
  const own = section(elf, '.gopclntab');
  if (own) {
    try { return parsePclntab(sectionBytes(elf, own), elf.le, textAddr); } catch { /* fall through to the scan */ }
  }
  for (const name of ['.data.rel.ro', '.rodata', '.noptrdata']) {
    const s = section(elf, name);
    if (!s || !s.size) continue;
    const b = sectionBytes(elf, s);
    for (let o = 0; o + 64 <= b.length; o += 4) {
      const m = elf.le ? b.readUInt32LE(o) : b.readUInt32BE(o);
      if (!MAGICS.has(m)) continue;
      try {
        const t = parsePclntab(b.subarray(o), elf.le, textAddr);
        if (!text || t.funcs[0].entry === textAddr) return t;
      } catch { /* a coincidence of bytes: keep looking */ }
    }
  }
  return undefined;
}
