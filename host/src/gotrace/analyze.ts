// Go binary analysis without DWARF: is it Go (build info), which version, and where are the
// functions a probe needs — their entry and every RET, as file offsets a uprobe attaches at.
import { readGoBuildInfo, GoBuildInfo } from '../discovery/elf';
import { openElf, fileOffset, functionSymbols, readAt, EM_X86_64, ElfFile } from './elf';
import { findPclntab, GoFunc } from './pclntab';
import { findReturns } from './x86';
import { offsetsFor, registerAbi, GoOffsets } from './offsets';
import * as fs from 'fs';

export interface FuncProbes {
  name: string;
  /** Virtual address and file offset of the entry. */
  entry: number;
  entryOffset: number;
  /** File offsets of every RET instruction in the function. */
  returnOffsets: number[];
}

export interface GoBinary {
  file: string;
  buildInfo: GoBuildInfo;
  /** Where function addresses came from: .symtab, or pclntab when the binary is stripped. */
  symbols: 'symtab' | 'pclntab';
  registerAbi: boolean;
  offsets?: GoOffsets;
  funcs: Map<string, FuncProbes>;
  /** Why this binary cannot be instrumented, when it cannot. */
  unsupported?: string;
}

function probesOf(elf: ElfFile, f: GoFunc): FuncProbes | undefined {
  const entryOffset = fileOffset(elf, f.entry);
  if (entryOffset < 0 || f.end <= f.entry || f.end - f.entry > 1 << 20) return undefined;
  const code = readAt(elf.fd, entryOffset, f.end - f.entry);
  const { returns, complete } = findReturns(code);
  // A function whose code cannot be walked to its end might return through a RET we missed;
  // probing only some of its returns would leave calls open, so it is not probed at all.
  if (!complete) return undefined;
  return { name: f.name, entry: f.entry, entryOffset, returnOffsets: returns.map((r) => entryOffset + r) };
}

/**
 * Analyzes `file` for the functions in `wanted`; undefined when it is not a Go ELF binary.
 * Function bounds always come from pclntab (the symbol table has no sizes for Go functions);
 * the symbol table, when present, confirms each entry.
 */
export function analyzeGoBinary(file: string, wanted: readonly string[]): GoBinary | undefined {
  const buildInfo = readGoBuildInfo(file);
  if (!buildInfo) return undefined;
  const elf = openElf(file);
  if (!elf) return undefined;
  try {
    const syms = functionSymbols(elf);
    const out: GoBinary = {
      file, buildInfo, symbols: syms.size ? 'symtab' : 'pclntab', registerAbi: registerAbi(buildInfo.goVersion),
      offsets: offsetsFor(buildInfo.goVersion), funcs: new Map(),
    };
    if (elf.machine !== EM_X86_64) out.unsupported = `ELF machine ${elf.machine}: only x86-64 return instructions are decoded`;
    else if (!out.registerAbi) out.unsupported = `${buildInfo.goVersion} passes arguments on the stack; the probes read the register ABI (Go >= 1.17)`;
    else if (!out.offsets) out.unsupported = `no struct offsets for ${buildInfo.goVersion} (host/src/gotrace/offsets.ts covers go1.17–go1.22)`;
    const tab = findPclntab(elf);
    if (!tab) {
      out.unsupported ??= 'no pclntab found';
      return out;
    }
    const want = new Set(wanted);
    const seen = new Map<string, number>();
    for (const f of tab.funcs) if (want.has(f.name)) seen.set(f.name, (seen.get(f.name) ?? 0) + 1);
    for (const f of tab.funcs) {
      if (!want.has(f.name)) continue;
      const sym = syms.get(f.name);
      // Two entries of one name are an assembly body and its ABI wrapper: the symbol table tells
      // which is which; without it, do not guess.
      if (sym !== undefined ? sym !== f.entry : seen.get(f.name)! > 1) continue;
      const p = probesOf(elf, f);
      if (p) out.funcs.set(f.name, p);
    }
    return out;
  } finally {
    fs.closeSync(elf.fd);
  }
}

/** Every function pclntab names, with its bounds (for tests and `telegen doctor`). */
export function goFunctions(file: string): GoFunc[] | undefined {
  const elf = openElf(file);
  if (!elf) return undefined;
  try {
    return findPclntab(elf)?.funcs;
  } finally {
    fs.closeSync(elf.fd);
  }
}
