// A small ELF section reader (64- and 32-bit, either byte order) and the Go build info it carries.
// Reads only the header, the section table and the one section asked for — never the whole file.
import * as fs from 'fs';

export interface ElfSection { name: string; offset: number; size: number; addr: number }

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = fs.readSync(fd, b, 0, len, pos);
  return n === len ? b : b.subarray(0, n);
}

export function elfSections(fd: number): { sections: ElfSection[]; is64: boolean; le: boolean } | undefined {
  const h = readAt(fd, 0, 64);
  if (h.length < 52 || h.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const is64 = h[4] === 2;
  const le = h[5] === 1;
  const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const shoff = is64 ? u64(h, 0x28) : u32(h, 0x20);
  const shentsize = u16(h, is64 ? 0x3a : 0x2e);
  const shnum = u16(h, is64 ? 0x3c : 0x30);
  const shstrndx = u16(h, is64 ? 0x3e : 0x32);
  if (!shoff || !shnum || shnum > 4096 || shstrndx >= shnum) return undefined;
  const tab = readAt(fd, shoff, shentsize * shnum);
  if (tab.length < shentsize * shnum) return undefined;
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const o = i * shentsize;
    raw.push(is64
      ? { nameOff: u32(tab, o), addr: u64(tab, o + 0x10), offset: u64(tab, o + 0x18), size: u64(tab, o + 0x20) }
      : { nameOff: u32(tab, o), addr: u32(tab, o + 0x0c), offset: u32(tab, o + 0x10), size: u32(tab, o + 0x14) });
  }
  const strs = raw[shstrndx];
  const names = readAt(fd, strs.offset, Math.min(strs.size, 1 << 20));
  const sections = raw.map((s) => {
    const end = names.indexOf(0, s.nameOff);
    return { name: names.toString('latin1', s.nameOff, end < 0 ? names.length : end), offset: s.offset, size: s.size, addr: s.addr };
  });
  return { sections, is64, le };
}

export interface GoModule { path: string; version: string }
export interface GoBuildInfo { goVersion: string; modulePath?: string; mainVersion?: string; deps?: GoModule[] }

function uvarint(b: Buffer, pos: number): [number, number] {
  let x = 0; let s = 0;
  for (let i = pos; i < b.length && i < pos + 10; i++) {
    const c = b[i];
    if (c < 0x80) return [x + c * 2 ** s, i + 1];
    x += (c & 0x7f) * 2 ** s; s += 7;
  }
  return [-1, pos];
}

/** modinfo text: "path\tMOD\nmod\tMOD\tVERSION\tSUM\n…" between two 16-byte sentinels. */
function parseModinfo(s: string): { modulePath?: string; mainVersion?: string; deps: GoModule[] } {
  const out: { modulePath?: string; mainVersion?: string; deps: GoModule[] } = { deps: [] };
  for (const line of s.split('\n')) {
    const f = line.split('\t');
    // "=>" lines replace the dep above them; the replacement is what was compiled in.
    if (f[0] === 'dep' && f[1]) out.deps.push({ path: f[1], version: f[2] ?? '' });
    if (f[0] === '=>' && f[1] && out.deps.length) out.deps[out.deps.length - 1] = { path: f[1], version: f[2] ?? '' };
    if (f[0] === 'path' && f[1] && !out.modulePath) out.modulePath = f[1];
    if (f[0] === 'mod' && f[1]) { out.modulePath = f[1]; if (f[2]) out.mainVersion = f[2]; }
  }
  return out;
}

/**
 * Go embeds build info in .go.buildinfo: a 32-byte header ("\xff Go buildinf:", pointer size,
 * flags), then — since Go 1.18 (flag bit 1) — two uvarint-length strings: the Go version and the
 * module info. Older binaries hold two pointers to Go string headers instead; we follow them
 * through the section table.
 */
export function readGoBuildInfo(file: string): GoBuildInfo | undefined {
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch { return undefined; }
  try {
    const elf = elfSections(fd);
    if (!elf) return undefined;
    const sec = elf.sections.find((s) => s.name === '.go.buildinfo');
    if (!sec || sec.size < 32) return undefined;
    const b = readAt(fd, sec.offset, Math.min(sec.size, 64 * 1024));
    if (b.toString('latin1', 0, 14) !== '\xff Go buildinf:') return undefined;
    const ptrSize = b[14];
    const flags = b[15];
    let version: string; let mod: string;
    if (flags & 2) {
      let [n, p] = uvarint(b, 32);
      if (n < 0) return undefined;
      version = b.toString('utf8', p, p + n);
      [n, p] = uvarint(b, p + n);
      mod = n > 0 ? b.toString('utf8', p, p + n) : '';
    } else {
      const big = (flags & 1) === 1;
      const ptr = (buf: Buffer, o: number) => (ptrSize === 8 ? Number(big ? buf.readBigUInt64BE(o) : buf.readBigUInt64LE(o)) : (big ? buf.readUInt32BE(o) : buf.readUInt32LE(o)));
      const at = (addr: number, len: number): Buffer | undefined => {
        const s = elf.sections.find((x) => x.addr && addr >= x.addr && addr + len <= x.addr + x.size);
        return s ? readAt(fd, s.offset + (addr - s.addr), len) : undefined;
      };
      const goString = (hdrAddr: number): string => {
        const hdr = at(hdrAddr, ptrSize * 2);
        if (!hdr) return '';
        const len = ptr(hdr, ptrSize);
        if (len <= 0 || len > 1 << 20) return '';
        return at(ptr(hdr, 0), len)?.toString('utf8') ?? '';
      };
      version = goString(ptr(b, 16));
      mod = goString(ptr(b, 16 + ptrSize));
    }
    if (!version.startsWith('go')) return undefined;
    // Strip the 16-byte sentinels around modinfo.
    const mi = mod.length >= 33 ? mod.slice(16, -16) : mod;
    return { goVersion: version, ...parseModinfo(mi) };
  } catch { return undefined; } finally { fs.closeSync(fd); }
}
