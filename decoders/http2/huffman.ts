// HPACK Huffman decoding (RFC 7541 §5.2, Appendix B), table-driven four bits at a time.
//
// The Appendix B code is canonical (codes of one length are consecutive, in symbol order, and
// each length continues from the previous one shifted left), so the code lengths below are
// the whole table: the codes themselves are derived at start-up. The decoder is a state machine
// whose states are the 256 internal nodes of the code tree; each (state, nibble) entry gives the
// next state, at most one emitted symbol (the shortest code is 5 bits) and whether the bits read
// since the last symbol are valid padding (a prefix of EOS, i.e. all ones, shorter than 8 bits).

// Code length in bits of symbols 0..255 and EOS (256), RFC 7541 Appendix B.
const CODE_LEN: usize = memory.data<u8>([
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,         // ' ' .. '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,              // '0' .. '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,                // '@' .. 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,             // 'P' .. '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,                // '`' .. 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,            // 'p' .. 127
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
  30,                                                             // EOS
]);

const EOS: i32 = 256;
const NODES: i32 = 256;
// Tree: kids[node*2+bit] >= 0 is an internal node, < 0 is leaf -(symbol+1).
const KIDS: usize = memory.data(NODES * 2 * 4);
// Depth of a node reached by all-one bits from the root, 255 otherwise.
const ONES: usize = memory.data(NODES);
// The state machine: u32 per (state, nibble) = next | symbol << 8 | flags << 16.
const FSM: usize = memory.data(NODES * 16 * 4);

export const HUF_EMIT: u32 = 1 << 16;
export const HUF_FAIL: u32 = 2 << 16;
export const HUF_ACCEPT: u32 = 4 << 16;

let built = false;

/** Builds the tree from the canonical code and the state machine from the tree (once). */
export function buildHuffman(): bool {
  if (built) return true;
  for (let i = 0; i < NODES * 2; i++) store<i32>(KIDS + (<usize>i << 2), 0x7fffffff);
  store<u8>(ONES, 0);
  let nodes = 1;
  let code: u32 = 0;
  for (let len = 1; len <= 30; len++) {
    for (let sym = 0; sym <= EOS; sym++) {
      if (<i32>load<u8>(CODE_LEN + <usize>sym) != len) continue;
      // Walk / create the path of `code` (len bits, MSB first).
      let node = 0;
      for (let b = len - 1; b >= 0; b--) {
        const bit = <i32>((code >> <u32>b) & 1);
        const slot = KIDS + (<usize>(node * 2 + bit) << 2);
        if (b == 0) {
          store<i32>(slot, -(sym + 1));
        } else {
          let next = load<i32>(slot);
          if (next == 0x7fffffff) {
            if (nodes >= NODES) return false;
            next = nodes++;
            store<i32>(slot, next);
            const pd = load<u8>(ONES + <usize>node);
            store<u8>(ONES + <usize>next, bit == 1 && pd != 255 ? pd + 1 : 255);
          } else if (next < 0) {
            return false; // not a prefix code
          }
          node = next;
        }
      }
      code++;
    }
    code <<= 1;
  }
  for (let s = 0; s < NODES; s++) {
    for (let n = 0; n < 16; n++) {
      let cur = s;
      let flags: u32 = 0;
      let sym: u32 = 0;
      for (let i = 3; i >= 0; i--) {
        const bit = (n >> i) & 1;
        const c = load<i32>(KIDS + (<usize>(cur * 2 + bit) << 2));
        if (c == 0x7fffffff) { flags |= HUF_FAIL; break; }
        if (c < 0) {
          const v = -c - 1;
          if (v == EOS) { flags |= HUF_FAIL; break; }
          flags |= HUF_EMIT;
          sym = <u32>v;
          cur = 0;
        } else {
          cur = c;
        }
      }
      if (load<u8>(ONES + <usize>cur) <= 7) flags |= HUF_ACCEPT;
      store<u32>(FSM + (<usize>(s * 16 + n) << 2), <u32>cur | (sym << 8) | flags);
    }
  }
  built = true;
  return true;
}

/**
 * Decodes `len` Huffman-coded bytes at `src` into `dst` (room for at least len*8/5 bytes).
 * Returns the decoded length, or -1 for an invalid string (EOS inside, bad padding).
 */
export function huffmanDecode(src: usize, len: u32, dst: usize): i32 {
  let state: u32 = 0;
  let accept = true;
  let out = dst;
  const end = src + <usize>len;
  for (let p = src; p < end; p++) {
    const b = <u32>load<u8>(p);
    let e = load<u32>(FSM + (<usize>((state << 4) | (b >> 4)) << 2));
    if (e & HUF_FAIL) return -1;
    if (e & HUF_EMIT) { store<u8>(out, <u8>(e >> 8)); out++; }
    state = e & 0xff;
    e = load<u32>(FSM + (<usize>((state << 4) | (b & 15)) << 2));
    if (e & HUF_FAIL) return -1;
    if (e & HUF_EMIT) { store<u8>(out, <u8>(e >> 8)); out++; }
    state = e & 0xff;
    accept = (e & HUF_ACCEPT) != 0;
  }
  if (!accept) return -1;
  return <i32>(out - dst);
}
