// The parts of an ELF file Go binary analysis needs beyond its sections (discovery/elf.ts):
// PT_LOAD segments, to turn a virtual address into the file offset a uprobe is placed at, and
// the STT_FUNC symbols of .symtab when the binary was not built with -ldflags=-s.
import * as fs from 'fs';
import { elfSections, ElfSection } from '../discovery/elf';

export interface Segment { vaddr: number; offset: number; filesz: number; exec: boolean }

export interface ElfFile {
  fd: number;
  le: boolean;
  is64: boolean;
  machine: number;
  sections: ElfSection[];
  segments: Segment[];
}

export const EM_X86_64 = 62;

export function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(fd, b, got, len - got, pos + got);
    if (n <= 0) break;
    got += n;
  }
  return got === len ? b : b.subarray(0, got);
}

/** Opens `file` and reads its header, sections and loadable segments; the caller closes `fd`. */
export function openElf(file: string): ElfFile | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const secs = elfSections(fd);
    if (!secs) throw new Error('not ELF');
    const h = readAt(fd, 0, 64);
    const { le, is64 } = secs;
    const u16 = (o: number) => (le ? h.readUInt16LE(o) : h.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const phoff = is64 ? u64(h, 0x20) : u32(h, 0x1c);
    const phentsize = u16(is64 ? 0x36 : 0x2a);
    const phnum = u16(is64 ? 0x38 : 0x2c);
    const tab = readAt(fd, phoff, phentsize * phnum);
    const segments: Segment[] = [];
    for (let i = 0; i < phnum && (i + 1) * phentsize <= tab.length; i++) {
      const o = i * phentsize;
      if (u32(tab, o) !== 1) continue; // PT_LOAD
      segments.push(is64
        ? { offset: u64(tab, o + 8), vaddr: u64(tab, o + 16), filesz: u64(tab, o + 32), exec: (u32(tab, o + 4) & 1) === 1 }
        : { offset: u32(tab, o + 4), vaddr: u32(tab, o + 8), filesz: u32(tab, o + 16), exec: (u32(tab, o + 24) & 1) === 1 });
    }
    return { fd, le, is64, machine: u16(0x12), sections: secs.sections, segments };
  } catch {
    fs.closeSync(fd);
    return undefined;
  }
}

/** The file offset holding virtual address `vaddr`, or -1 when no loaded segment has it. */
export function fileOffset(elf: ElfFile, vaddr: number): number {
  for (const s of elf.segments) if (vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
  return -1;
}

export function section(elf: ElfFile, name: string): ElfSection | undefined {
  return elf.sections.find((s) => s.name === name);
}

export function sectionBytes(elf: ElfFile, s: ElfSection): Buffer {
  return readAt(elf.fd, s.offset, s.size);
}

/** name → address of every defined function symbol in .symtab; empty when stripped. */
export function functionSymbols(elf: ElfFile): Map<string, number> {
  const out = new Map<string, number>();
  const symtab = section(elf, '.symtab');
  const strtab = section(elf, '.strtab');
  if (!symtab || !strtab) return out;
  const syms = sectionBytes(elf, symtab);
  const strs = sectionBytes(elf, strtab);
  const ent = elf.is64 ? 24 : 16;
  for (let o = 0; o + ent <= syms.length; o += ent) {
    const nameOff = elf.le ? syms.readUInt32LE(o) : syms.readUInt32BE(o);
    const info = syms[elf.is64 ? o + 4 : o + 12];
    const shndx = elf.le ? syms.readUInt16LE(elf.is64 ? o + 6 : o + 14) : syms.readUInt16BE(elf.is64 ? o + 6 : o + 14);
    if ((info & 0xf) !== 2 || shndx === 0) continue; // STT_FUNC, defined here
    const value = elf.is64
      ? Number(elf.le ? syms.readBigUInt64LE(o + 8) : syms.readBigUInt64BE(o + 8))
      : (elf.le ? syms.readUInt32LE(o + 4) : syms.readUInt32BE(o + 4));
    const end = strs.indexOf(0, nameOff);
    out.set(strs.toString('latin1', nameOff, end < 0 ? strs.length : end), value);
  }
  return out;
}
