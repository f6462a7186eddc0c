// OpenSSL's SSL BIO (BIO_f_ssl): where its read and write functions are in a file.
//
// A program may do its TLS I/O through an SSL BIO (BIO_new_ssl, BIO_set_ssl; often under a
// buffering BIO read with BIO_gets and written with BIO_puts/BIO_printf: `openssl s_server -www`,
// `-WWW`, `-rev`, and programs written after its example). Since OpenSSL 1.1.1 the SSL BIO's
// read and write (ssl/bio_ssl.c) call libssl's internal ssl_read_internal/ssl_write_internal,
// not SSL_read/SSL_write: no exported function of libssl sees that plaintext. The two static
// functions have no symbol, but they sit in the BIO_METHOD that BIO_f_ssl() returns; this finds
// that table in the file and reads the two pointers, so they can be hooked like SSL_read_ex and
// SSL_write_ex, whose shape they have: (BIO *, buf, size_t, size_t *moved), 1 on success.
//
// The table's layout (include/internal/bio.h, crypto/bio/bio_local.h, 1.1.1 to 3.x):
//   int type; const char *name; bwrite; bwrite_old; bread; bread_old; bputs; bgets; ctrl; …
// and the SSL BIO's is { BIO_TYPE_SSL, "ssl", ssl_write, NULL, ssl_read, NULL, … }. All of that is
// checked before anything is hooked. Other layouts are refused: OpenSSL ≤ 1.1.0 and LibreSSL (their
// SSL BIO calls SSL_read/SSL_write, already hooked) put bread where bwrite_old is here.
import * as fs from 'fs';
import { openElf, ElfFile, fileOffset, readAt, section, sectionBytes } from '../gotrace/elf';

/** File offsets of the SSL BIO's bread and bwrite. */
export interface SslBioFuncs { read: number; write: number; via: 'code' | 'scan' }

const BIO_TYPE_SSL = 0x0207; // 7 | BIO_TYPE_FILTER (openssl/bio.h)
const EM_X86_64 = 62;
const EM_AARCH64 = 183;

class Image {
  readonly ps: number;
  private relocs?: Map<number, number>;
  constructor(readonly elf: ElfFile) {
    this.ps = elf.is64 ? 8 : 4;
  }

  bytes(vaddr: number, len: number): Buffer | undefined {
    const off = fileOffset(this.elf, vaddr);
    if (off < 0) return undefined;
    const b = readAt(this.elf.fd, off, len);
    return b.length === len ? b : undefined;
  }

  u32(b: Buffer, o: number): number {
    return this.elf.le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }

  exec(vaddr: number): boolean {
    return this.elf.segments.some((s) => s.exec && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz);
  }

  /** A pointer slot as the dynamic linker leaves it. GNU ld also writes a relative relocation's
   *  value in place; lld leaves 0 there and only the RELA addend has it. */
  pointer(vaddr: number): number | undefined {
    const b = this.bytes(vaddr, this.ps);
    if (!b) return undefined;
    const v = this.ps === 8 ? Number(this.elf.le ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0)) : this.u32(b, 0);
    return v || this.relocated(vaddr) || 0;
  }

  /** Addends of the symbol-less (relative) RELA relocations, by the address they fill. */
  private relocated(vaddr: number): number | undefined {
    if (!this.relocs) {
      this.relocs = new Map();
      const rela = section(this.elf, '.rela.dyn');
      if (rela && this.elf.is64) {
        const t = sectionBytes(this.elf, rela);
        const le = this.elf.le;
        for (let o = 0; o + 24 <= t.length; o += 24) {
          const info = le ? t.readBigUInt64LE(o + 8) : t.readBigUInt64BE(o + 8);
          if (info >> 32n !== 0n) continue;
          this.relocs.set(Number(le ? t.readBigUInt64LE(o) : t.readBigUInt64BE(o)), Number(le ? t.readBigInt64LE(o + 16) : t.readBigInt64BE(o + 16)));
        }
      }
    }
    return this.relocs.get(vaddr);
  }

  cstring(vaddr: number, max: number): string | undefined {
    const b = this.bytes(vaddr, max + 1);
    if (!b) return undefined;
    const end = b.indexOf(0);
    return end < 0 ? undefined : b.toString('latin1', 0, end);
  }

  vaddrOf(off: number): number {
    for (const s of this.elf.segments) if (off >= s.offset && off < s.offset + s.filesz) return off - s.offset + s.vaddr;
    return -1;
  }
}

/** The SSL BIO's functions when `vaddr` holds its BIO_METHOD (checked field by field). */
function methodAt(img: Image, vaddr: number): { read: number; write: number } | undefined {
  const head = img.bytes(vaddr, 4);
  if (!head || img.u32(head, 0) !== BIO_TYPE_SSL) return undefined;
  const slot = (i: number) => img.pointer(vaddr + i * img.ps);
  const name = slot(1);
  if (!name || img.cstring(name, 3) !== 'ssl') return undefined;
  const [bwrite, bwriteOld, bread, breadOld] = [slot(2), slot(3), slot(4), slot(5)];
  if (!bwrite || !bread || bwriteOld !== 0 || breadOld !== 0 || !img.exec(bwrite) || !img.exec(bread)) return undefined;
  const read = fileOffset(img.elf, bread);
  const write = fileOffset(img.elf, bwrite);
  return read < 0 || write < 0 ? undefined : { read, write };
}

/** Virtual address of an exported function (.dynsym), or -1. Read in pieces: node's symbol
 *  tables are 7 MB, and this runs in the loader, under its memory limit. */
function dynamicSymbol(elf: ElfFile, name: string): number {
  const symtab = section(elf, '.dynsym');
  const strtab = section(elf, '.dynstr');
  if (!symtab || !strtab) return -1;
  const CHUNK = 1 << 20;
  // Every place the name ends a string (the linker may share a longer name's tail).
  const want = Buffer.from(name + '\0', 'latin1');
  const names = new Set<number>();
  for (let pos = 0; pos < strtab.size; pos += CHUNK - want.length) {
    const b = readAt(elf.fd, strtab.offset + pos, Math.min(CHUNK, strtab.size - pos));
    for (let i = b.indexOf(want); i >= 0; i = b.indexOf(want, i + 1)) names.add(pos + i);
    if (pos + b.length >= strtab.size) break;
  }
  if (!names.size) return -1;
  const ent = elf.is64 ? 24 : 16;
  const per = Math.floor(CHUNK / ent) * ent;
  for (let pos = 0; pos < symtab.size; pos += per) {
    const syms = readAt(elf.fd, symtab.offset + pos, Math.min(per, symtab.size - pos));
    for (let o = 0; o + ent <= syms.length; o += ent) {
      if (!names.has(elf.le ? syms.readUInt32LE(o) : syms.readUInt32BE(o))) continue;
      const shndx = elf.le ? syms.readUInt16LE(elf.is64 ? o + 6 : o + 14) : syms.readUInt16BE(elf.is64 ? o + 6 : o + 14);
      if (shndx === 0) continue; // imported, not defined here
      return elf.is64
        ? Number(elf.le ? syms.readBigUInt64LE(o + 8) : syms.readBigUInt64BE(o + 8))
        : (elf.le ? syms.readUInt32LE(o + 4) : syms.readUInt32BE(o + 4));
    }
  }
  return -1;
}

/** What BIO_f_ssl() returns, read from its code: `return &methods_sslp;` compiles to one
 *  address computation (PC-relative, or an immediate in a non-PIE executable) and a return. -1
 *  when the code is not that shape. */
export function returnedAddress(code: Buffer, pc: number, machine: number): number {
  if (machine === EM_X86_64) {
    let i = 0;
    if (code.length >= 4 && code.readUInt32BE(0) === 0xf30f1efa) i = 4; // endbr64
    // lea rax, [rip + disp32]; ret
    if (code.length >= i + 8 && code[i] === 0x48 && code[i + 1] === 0x8d && code[i + 2] === 0x05 && code[i + 7] === 0xc3) {
      return pc + i + 7 + code.readInt32LE(i + 3);
    }
    // mov eax, imm32; ret (a non-PIE executable: node)
    if (code.length >= i + 6 && code[i] === 0xb8 && code[i + 5] === 0xc3) return code.readUInt32LE(i + 1);
    return -1;
  }
  if (machine === EM_AARCH64) {
    let i = 0;
    const insn = (k: number) => code.readUInt32LE(k);
    // bti c / paciasp: hints that may open a function
    while (code.length >= i + 4 && (insn(i) === 0xd503245f || insn(i) === 0xd503233f)) i += 4;
    if (code.length < i + 8) return -1;
    const adrp = insn(i);
    const add = insn(i + 4);
    if ((adrp & 0x9f000000) >>> 0 !== 0x90000000 || (adrp & 0x1f) !== 0) return -1; // adrp x0, page
    if ((add & 0xffc00000) >>> 0 !== 0x91000000 || (add & 0x1f) !== 0 || ((add >> 5) & 0x1f) !== 0) return -1; // add x0, x0, #lo12
    let imm = (((adrp >>> 5) & 0x7ffff) << 2) | ((adrp >>> 29) & 3);
    if (imm & 0x100000) imm -= 0x200000;
    const page = Math.floor((pc + i) / 4096) * 4096 + imm * 4096;
    return page + ((add >>> 10) & 0xfff);
  }
  return -1;
}

/** Every pointer-aligned place in the file's read-only data holding BIO_TYPE_SSL: the fallback
 *  when BIO_f_ssl's code is not the expected shape. Read in pieces (node's .rodata: 47 MB). */
function scanForMethod(img: Image): { read: number; write: number } | undefined {
  const names = ['.data.rel.ro', '.data.rel.ro.local', '.rodata', '.data'];
  const areas = img.elf.sections.filter((s) => names.includes(s.name)).map((s) => ({ offset: s.offset, vaddr: s.addr, size: s.size }));
  if (!areas.length) for (const s of img.elf.segments) if (!s.exec) areas.push({ offset: s.offset, vaddr: s.vaddr, size: s.filesz });
  const CHUNK = 1 << 20;
  for (const a of areas) {
    const first = (img.ps - (a.vaddr % img.ps)) % img.ps;
    for (let pos = first; pos < a.size; pos += CHUNK) {
      const b = readAt(img.elf.fd, a.offset + pos, Math.min(CHUNK, a.size - pos));
      for (let o = 0; o + 8 <= b.length; o += img.ps) {
        if (img.u32(b, o) !== BIO_TYPE_SSL) continue;
        const m = methodAt(img, a.vaddr + pos + o);
        if (m) return m;
      }
    }
  }
  return undefined;
}

/** The SSL BIO's read and write functions in `file` (a libssl, or an executable that carries
 *  OpenSSL and exports BIO_f_ssl), or null when it has none this tracer can hook. */
export function sslBioFuncs(file: string): SslBioFuncs | null {
  let elf: ElfFile | undefined;
  try {
    elf = openElf(file);
  } catch {
    return null;
  }
  if (!elf) return null;
  try {
    const img = new Image(elf);
    const fn = dynamicSymbol(elf, 'BIO_f_ssl');
    if (fn < 0) return null;
    const code = img.bytes(fn, 16);
    const table = code ? returnedAddress(code, fn, elf.machine) : -1;
    const m = table >= 0 ? methodAt(img, table) : undefined;
    if (m) return { ...m, via: 'code' };
    const s = scanForMethod(img);
    return s ? { ...s, via: 'scan' } : null;
  } finally {
    fs.closeSync(elf.fd);
  }
}

/** For tests: the table found by scanning alone. */
export function sslBioFuncsByScan(file: string): { read: number; write: number } | null {
  const elf = openElf(file);
  if (!elf) return null;
  try {
    return scanForMethod(new Image(elf)) ?? null;
  } finally {
    fs.closeSync(elf.fd);
  }
}
