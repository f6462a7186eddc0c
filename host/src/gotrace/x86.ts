// An x86-64 instruction length decoder: just enough decoding (prefixes, REX, VEX/EVEX, the three
// opcode maps, ModRM/SIB/displacement, immediates) to walk a function instruction by instruction,
// so a 0xC3 byte is known to be a RET only when an instruction starts there — never the middle of
// an immediate or displacement. Go's return probes go on these RETs because a uretprobe rewrites
// the return address on the stack, which Go's stack copying (growth, shrinking) cannot survive.

/** Immediate size codes in the tables below. */
const I_NONE = 0;
const I_B = 1;     // imm8
const I_W = 2;     // imm16
const I_Z = 3;     // imm16 with 0x66, else imm32
const I_V = 4;     // imm16 / imm32 / imm64 with REX.W (MOV r, imm)
const I_WB = 5;    // imm16 + imm8 (ENTER)
const I_MOFFS = 6; // moffs: 8 bytes, 4 with 0x67
const I_F6 = 7;    // TEST r/m, imm only when ModRM.reg is 0 or 1 (F6: imm8, F7: immZ)
const BAD = 255;

interface Op { modrm: boolean; imm: number }

function table(spec: (op: number) => Op | null): Array<Op | null> {
  const t: Array<Op | null> = [];
  for (let i = 0; i < 256; i++) t.push(spec(i));
  return t;
}

const ONE = table((op) => {
  if (op < 0x40) {
    const lo = op & 7;
    if (op === 0x0f || op === 0x26 || op === 0x2e || op === 0x36 || op === 0x3e) return null; // escape / prefixes
    if (lo < 4) return { modrm: true, imm: I_NONE };
    if (lo === 4) return { modrm: false, imm: I_B };
    if (lo === 5) return { modrm: false, imm: I_Z };
    return { modrm: false, imm: BAD }; // push/pop seg, daa…: invalid in 64-bit mode
  }
  if (op < 0x60) return { modrm: false, imm: I_NONE }; // REX handled earlier; push/pop
  switch (op) {
    case 0x63: return { modrm: true, imm: I_NONE };
    case 0x68: return { modrm: false, imm: I_Z };
    case 0x69: return { modrm: true, imm: I_Z };
    case 0x6a: return { modrm: false, imm: I_B };
    case 0x6b: return { modrm: true, imm: I_B };
    case 0x80: case 0x83: case 0xc0: case 0xc1: case 0xc6: return { modrm: true, imm: I_B };
    case 0x81: case 0xc7: return { modrm: true, imm: I_Z };
    case 0x82: case 0x60: case 0x61: case 0x9a: case 0xce: case 0xd4: case 0xd5: case 0xd6: case 0xea: return { modrm: false, imm: BAD };
    case 0xa8: case 0xcd: case 0xeb: return { modrm: false, imm: I_B };
    case 0xa9: return { modrm: false, imm: I_Z };
    case 0xc2: case 0xca: return { modrm: false, imm: I_W };
    case 0xc8: return { modrm: false, imm: I_WB };
    case 0xe8: case 0xe9: return { modrm: false, imm: I_Z };
    case 0xf6: case 0xf7: return { modrm: true, imm: I_F6 };
    default: break;
  }
  if (op >= 0x6c && op <= 0x6f) return { modrm: false, imm: I_NONE };
  if (op >= 0x70 && op <= 0x7f) return { modrm: false, imm: I_B };
  if (op >= 0x84 && op <= 0x8f) return { modrm: true, imm: I_NONE };
  if (op >= 0x90 && op <= 0x9f) return { modrm: false, imm: I_NONE };
  if (op >= 0xa0 && op <= 0xa3) return { modrm: false, imm: I_MOFFS };
  if (op >= 0xa4 && op <= 0xaf) return { modrm: false, imm: I_NONE };
  if (op >= 0xb0 && op <= 0xb7) return { modrm: false, imm: I_B };
  if (op >= 0xb8 && op <= 0xbf) return { modrm: false, imm: I_V };
  if (op >= 0xd0 && op <= 0xd3) return { modrm: true, imm: I_NONE };
  if (op >= 0xd8 && op <= 0xdf) return { modrm: true, imm: I_NONE }; // x87
  if (op >= 0xe0 && op <= 0xe7) return { modrm: false, imm: I_B };
  if (op >= 0xfe) return { modrm: true, imm: I_NONE };
  return { modrm: false, imm: I_NONE }; // c3 c9 cb cc cf d7 ec–ef f1 f4 f5 f8–fd
});

/** The 0F map (after legacy prefixes / VEX map 1). */
const TWO = table((op) => {
  if (op === 0x38 || op === 0x3a) return null; // three-byte escapes
  if (op === 0x0f) return { modrm: true, imm: I_B }; // 3DNow!: suffix byte
  if (op === 0x70 || op === 0x71 || op === 0x72 || op === 0x73 || op === 0xa4 || op === 0xac || op === 0xba
      || op === 0xc2 || op === 0xc4 || op === 0xc5 || op === 0xc6) return { modrm: true, imm: I_B };
  if (op >= 0x80 && op <= 0x8f) return { modrm: false, imm: I_Z }; // jcc rel32
  if ([0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77,
    0xa0, 0xa1, 0xa2, 0xa8, 0xa9, 0xaa].includes(op) || (op >= 0xc8 && op <= 0xcf)) return { modrm: false, imm: I_NONE };
  if ([0x04, 0x0a, 0x0c, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x7a, 0x7b].includes(op)) return { modrm: false, imm: BAD };
  return { modrm: true, imm: I_NONE };
});

function isLegacyPrefix(b: number): boolean {
  return b === 0xf0 || b === 0xf2 || b === 0xf3 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x26
    || b === 0x64 || b === 0x65 || b === 0x66 || b === 0x67;
}

/** Length of the ModRM byte and what follows it (SIB, displacement), from the ModRM at `p`. */
function modrmLength(code: Uint8Array, p: number, end: number): number {
  if (p >= end) return -1;
  const m = code[p];
  const mod = m >> 6;
  const rm = m & 7;
  let n = 1;
  if (mod === 3) return n;
  if (rm === 4) {
    if (p + 1 >= end) return -1;
    n++;
    if (mod === 0 && (code[p + 1] & 7) === 5) n += 4; // SIB with no base: disp32
  } else if (mod === 0 && rm === 5) {
    n += 4; // RIP-relative
  }
  if (mod === 1) n += 1;
  else if (mod === 2) n += 4;
  return n;
}

export interface Insn { length: number; opcode: number; map: number; prefixes: number }

/**
 * Decodes the instruction at `code[p]`, returning its length and its opcode (map 0: one-byte,
 * 1: 0F, 2: 0F38, 3: 0F3A), or null when the bytes are not a valid 64-bit instruction.
 */
export function decode(code: Uint8Array, p: number, end = code.length): Insn | null {
  const start = p;
  let opsize16 = false;
  let addr32 = false;
  let prefixes = 0;
  while (p < end && isLegacyPrefix(code[p])) {
    if (code[p] === 0x66) opsize16 = true;
    if (code[p] === 0x67) addr32 = true;
    p++;
    if (++prefixes > 14) return null;
  }
  let rexW = false;
  if (p < end && (code[p] & 0xf0) === 0x40) {
    rexW = (code[p] & 8) !== 0;
    p++;
  }
  if (p >= end) return null;
  let map = 0;
  let op: number;
  let info: Op | null;
  const b0 = code[p];
  if (b0 === 0xc4 || b0 === 0xc5 || b0 === 0x62) {
    // VEX (c4: 3 bytes, c5: 2 bytes) and EVEX (62: 4 bytes); in 64-bit mode these are never LES/LDS/BOUND.
    if (b0 === 0xc5) { map = 1; p += 2; }
    else if (b0 === 0xc4) { if (p + 1 >= end) return null; map = code[p + 1] & 0x1f; p += 3; }
    else { if (p + 1 >= end) return null; map = code[p + 1] & 0x07; p += 4; }
    if (p >= end || map < 1 || map > 3) return null;
    op = code[p++];
    if (map === 1 && op === 0x77) return { length: p - start, opcode: op, map, prefixes }; // vzeroupper/vzeroall: no ModRM
    const imm = map === 3 || (map === 1 && TWO[op]?.imm === I_B && op !== 0x0f) ? 1 : 0;
    const ml = modrmLength(code, p, end);
    if (ml < 0) return null;
    const length = p - start + ml + imm;
    return length <= 15 && start + length <= end ? { length, opcode: op, map, prefixes } : null;
  }
  p++;
  if (b0 === 0x0f) {
    if (p >= end) return null;
    const b1 = code[p++];
    if (b1 === 0x38 || b1 === 0x3a) {
      if (p >= end) return null;
      map = b1 === 0x38 ? 2 : 3;
      op = code[p++];
      info = { modrm: true, imm: map === 3 ? I_B : I_NONE };
    } else {
      map = 1;
      op = b1;
      info = TWO[op];
    }
  } else {
    op = b0;
    info = ONE[op];
  }
  if (!info || info.imm === BAD) return null;
  let reg = 0;
  if (info.modrm) {
    if (p >= end) return null;
    reg = (code[p] >> 3) & 7;
    const ml = modrmLength(code, p, end);
    if (ml < 0) return null;
    p += ml;
  }
  switch (info.imm) {
    case I_B: p += 1; break;
    case I_W: p += 2; break;
    case I_Z: p += opsize16 && !(map === 0 && (op === 0xe8 || op === 0xe9)) && map !== 1 ? 2 : 4; break;
    case I_V: p += rexW ? 8 : opsize16 ? 2 : 4; break;
    case I_WB: p += 3; break;
    case I_MOFFS: p += addr32 ? 4 : 8; break;
    case I_F6: if (reg < 2) p += op === 0xf6 ? 1 : opsize16 ? 2 : 4; break;
    default: break;
  }
  const length = p - start;
  return length <= 15 && p <= end ? { length, opcode: op, map, prefixes } : null;
}

/** Start offsets of every instruction in code[from, to), or null if the walk hits undecodable bytes. */
export function instructionStarts(code: Uint8Array, from = 0, to = code.length): number[] | null {
  const out: number[] = [];
  for (let p = from; p < to;) {
    const i = decode(code, p, to);
    if (!i) return null;
    out.push(p);
    p += i.length;
  }
  return out;
}

/**
 * Offsets (from `from`) of the RET instructions (C3, C2 iw) in a function's code. Go pads
 * between functions with INT3, which decodes like any instruction; a walk that hits undecodable
 * bytes stops there and reports what it found before, plus `complete: false`.
 */
export function findReturns(code: Uint8Array, from = 0, to = code.length): { returns: number[]; complete: boolean } {
  const returns: number[] = [];
  for (let p = from; p < to;) {
    const i = decode(code, p, to);
    if (!i) return { returns, complete: false };
    if (i.map === 0 && (i.opcode === 0xc3 || i.opcode === 0xc2)) returns.push(p - from);
    p += i.length;
  }
  return { returns, complete: true };
}
