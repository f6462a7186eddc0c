// A small ELF64 little-endian reader: what symbolization needs and nothing else — PT_LOAD
// segments (file offset → virtual address), the GNU build-id note, and function symbols from
// .symtab (kept by gcc -g/-O0 builds) or, when stripped, .dynsym.
import * as fs from 'fs';

export interface ElfSegment { offset: number; vaddr: number; filesz: number; memsz: number; exec: boolean }
export interface ElfSymbols {
  /** Sorted start addresses (link-time virtual addresses). */
  starts: Float64Array;
  sizes: Float64Array;
  names: string[];
}
export interface ElfInfo {
  buildId: string;
  /** ET_DYN (PIE or shared library): addresses are relative to the load base. */
  dyn: boolean;
  segments: ElfSegment[];
  symbols: ElfSymbols;
  /** Which table the symbols came from: symtab, dynsym or none (fully stripped). */
  symbolSource: 'symtab' | 'dynsym' | 'none';
}

const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const SHT_NOTE = 7;
const PT_LOAD = 1;
const PT_NOTE = 4;
const PF_X = 1;
const NT_GNU_BUILD_ID = 3;

/** Parses an ELF file's bytes; throws on anything that is not a 64-bit little-endian ELF. */
export function parseElf(buf: Buffer): ElfInfo {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('only 64-bit little-endian ELF is supported');
  const type = buf.readUInt16LE(16);
  const phoff = Number(buf.readBigUInt64LE(32));
  const shoff = Number(buf.readBigUInt64LE(40));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  const shentsize = buf.readUInt16LE(58);
  const shnum = buf.readUInt16LE(60);

  const segments: ElfSegment[] = [];
  let buildId = '';
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (o + 56 > buf.length) break;
    const ptype = buf.readUInt32LE(o);
    const flags = buf.readUInt32LE(o + 4);
    const offset = Number(buf.readBigUInt64LE(o + 8));
    const vaddr = Number(buf.readBigUInt64LE(o + 16));
    const filesz = Number(buf.readBigUInt64LE(o + 32));
    const memsz = Number(buf.readBigUInt64LE(o + 40));
    if (ptype === PT_LOAD) segments.push({ offset, vaddr, filesz, memsz, exec: (flags & PF_X) !== 0 });
    else if (ptype === PT_NOTE && !buildId) buildId = findBuildId(buf, offset, filesz);
  }

  const sections: Array<{ type: number; offset: number; size: number; link: number; entsize: number }> = [];
  for (let i = 0; i < shnum && shoff > 0; i++) {
    const o = shoff + i * shentsize;
    if (o + 64 > buf.length) break;
    sections.push({
      type: buf.readUInt32LE(o + 4),
      offset: Number(buf.readBigUInt64LE(o + 24)),
      size: Number(buf.readBigUInt64LE(o + 32)),
      link: buf.readUInt32LE(o + 40),
      entsize: Number(buf.readBigUInt64LE(o + 56)),
    });
  }
  if (!buildId) for (const s of sections) if (s.type === SHT_NOTE) { buildId = findBuildId(buf, s.offset, s.size); if (buildId) break; }

  let symbolSource: ElfInfo['symbolSource'] = 'none';
  let syms: Array<[number, number, string]> = [];
  for (const want of [SHT_SYMTAB, SHT_DYNSYM]) {
    const tab = sections.find((s) => s.type === want);
    if (!tab) continue;
    const str = sections[tab.link];
    if (!str) continue;
    syms = readSymbols(buf, tab, str);
    if (syms.length) { symbolSource = want === SHT_SYMTAB ? 'symtab' : 'dynsym'; break; }
  }
  syms.sort((a, b) => a[0] - b[0]);
  const starts = new Float64Array(syms.length);
  const sizes = new Float64Array(syms.length);
  const names: string[] = new Array(syms.length);
  syms.forEach((s, i) => { starts[i] = s[0]; sizes[i] = s[1]; names[i] = s[2]; });
  return { buildId, dyn: type === 3, segments, symbols: { starts, sizes, names }, symbolSource };
}

function findBuildId(buf: Buffer, off: number, size: number): string {
  let o = off;
  const end = Math.min(off + size, buf.length);
  while (o + 12 <= end) {
    const namesz = buf.readUInt32LE(o);
    const descsz = buf.readUInt32LE(o + 4);
    const type = buf.readUInt32LE(o + 8);
    const nameAt = o + 12;
    const descAt = nameAt + ((namesz + 3) & ~3);
    if (type === NT_GNU_BUILD_ID && namesz === 4 && buf.toString('latin1', nameAt, nameAt + 3) === 'GNU' && descAt + descsz <= end) {
      return buf.toString('hex', descAt, descAt + descsz);
    }
    o = descAt + ((descsz + 3) & ~3);
  }
  return '';
}

function readSymbols(buf: Buffer, tab: { offset: number; size: number; entsize: number }, str: { offset: number; size: number }): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = [];
  const ent = tab.entsize || 24;
  const end = Math.min(tab.offset + tab.size, buf.length);
  for (let o = tab.offset; o + ent <= end; o += ent) {
    const info = buf[o + 4];
    const t = info & 0xf;
    if (t !== STT_FUNC && t !== STT_GNU_IFUNC) continue;
    const shndx = buf.readUInt16LE(o + 6);
    if (shndx === 0) continue; // undefined: an import, lives in another object
    const value = Number(buf.readBigUInt64LE(o + 8));
    if (value === 0) continue;
    const size = Number(buf.readBigUInt64LE(o + 16));
    const nameOff = str.offset + buf.readUInt32LE(o);
    let e = nameOff;
    while (e < buf.length && buf[e] !== 0) e++;
    out.push([value, size, buf.toString('utf8', nameOff, e)]);
  }
  return out;
}

/** Maps a file offset (from /proc/PID/maps) to the link-time virtual address. */
export function fileOffsetToVaddr(info: ElfInfo, fileOffset: number): number | undefined {
  for (const s of info.segments) {
    if (fileOffset >= s.offset && fileOffset < s.offset + Math.max(s.filesz, 1)) return s.vaddr + (fileOffset - s.offset);
  }
  return undefined;
}

/** Binary search: the function containing `vaddr`, or undefined. Symbols without a size
 *  (hand-written assembly) cover up to the next symbol. */
export function lookupSymbol(syms: ElfSymbols, vaddr: number): { name: string; offset: number } | undefined {
  let lo = 0;
  let hi = syms.starts.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (syms.starts[mid] <= vaddr) { best = mid; lo = mid + 1; } else hi = mid - 1;
  }
  if (best < 0) return undefined;
  const size = syms.sizes[best];
  const off = vaddr - syms.starts[best];
  if (size > 0 && off >= size) return undefined;
  if (size === 0 && best + 1 < syms.starts.length && vaddr >= syms.starts[best + 1]) return undefined;
  return { name: syms.names[best], offset: off };
}

export function readElfFile(file: string): ElfInfo {
  return parseElf(fs.readFileSync(file));
}
