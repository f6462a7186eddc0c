// Failed TLS handshakes (bpf/tls.bpf.c, TG_EV_TLS_HANDSHAKE) become spans of their connection:
// CLIENT or SERVER by the side, status ERROR, error.type tls.handshake_failed, with what the
// library said (OpenSSL's error reason and verify result, GnuTLS's error code). A handshake that
// failed carried no plaintext, so no decoder ever sees its connection: without this, "my service
// cannot reach X" over TLS left nothing at all. Successful handshakes only count
// (telegen.tls.handshakes, from the object's counters).
import * as fs from 'fs';
import { SpanStatusCode } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { KIND_EXCHANGE, FLAG_ERROR } from '../../../decoders/abi/abi';
import { DecodedRecord } from '../decoders/records';
import { recordToSpan, SpanClock } from '../pipeline/spans';
import { ConnMeta } from '../model';
import { tg_tls_handshake_event, tg_tls_hs_outcome, tg_tls_library, tg_tls_stat } from '../generated/tls-layout';
import { openElf, fileOffset, section, sectionBytes, readAt, EM_X86_64 } from '../gotrace/elf';

/** OpenSSL's texts (ERR_reason_error_string) of the ERR_LIB_SSL reasons a handshake fails with. */
const SSL_REASONS: Record<number, string> = {
  118: 'no suitable signature algorithm', 134: 'certificate verify failed', 147: 'decryption failed',
  155: 'https proxy request', 156: 'http request', 181: 'no ciphers available', 191: 'no protocols available',
  193: 'no shared cipher', 199: 'peer did not return a certificate', 235: 'no application protocol',
  258: 'unsupported protocol', 267: 'wrong version number', 294: 'unexpected eof while reading', 396: 'version too low',
};

/** TLS alert descriptions (RFC 8446 §6; RFC 5246 §7.2): OpenSSL's reason for a fatal alert it
 *  received is 1000 + the alert. */
const ALERTS: Record<number, string> = {
  10: 'unexpected message', 20: 'bad record mac', 22: 'record overflow', 40: 'handshake failure', 42: 'bad certificate',
  43: 'unsupported certificate', 44: 'certificate revoked', 45: 'certificate expired', 46: 'certificate unknown',
  47: 'illegal parameter', 48: 'unknown ca', 49: 'access denied', 50: 'decode error', 51: 'decrypt error',
  70: 'protocol version', 71: 'insufficient security', 80: 'internal error', 86: 'inappropriate fallback',
  90: 'user canceled', 109: 'missing extension', 110: 'unsupported extension', 112: 'unrecognized name',
  113: 'bad certificate status response', 115: 'unknown psk identity', 116: 'certificate required', 120: 'no application protocol',
};

/** X509_verify_cert_error_string() of the verify results a peer's certificate commonly gets. */
const VERIFY_RESULTS: Record<number, string> = {
  2: 'unable to get issuer certificate', 7: 'certificate signature failure', 9: 'certificate is not yet valid',
  10: 'certificate has expired', 18: 'self-signed certificate', 19: 'self-signed certificate in certificate chain',
  20: 'unable to get local issuer certificate', 21: 'unable to verify the first certificate', 23: 'certificate revoked',
  24: 'invalid CA certificate', 26: 'unsupported certificate purpose', 27: 'certificate not trusted', 28: 'certificate rejected',
  62: 'hostname mismatch', 63: 'email address mismatch', 64: 'IP address mismatch',
};

/** gnutls_strerror_name() of the fatal codes a handshake commonly ends with. */
const GNUTLS_ERRORS: Record<number, string> = {
  [-8]: 'GNUTLS_E_UNSUPPORTED_VERSION_PACKET', [-9]: 'GNUTLS_E_UNEXPECTED_PACKET_LENGTH', [-12]: 'GNUTLS_E_FATAL_ALERT_RECEIVED',
  [-15]: 'GNUTLS_E_UNEXPECTED_PACKET', [-19]: 'GNUTLS_E_UNEXPECTED_HANDSHAKE_PACKET', [-32]: 'GNUTLS_E_INSUFFICIENT_CREDENTIALS',
  [-43]: 'GNUTLS_E_CERTIFICATE_ERROR', [-53]: 'GNUTLS_E_PUSH_ERROR', [-54]: 'GNUTLS_E_PULL_ERROR',
  [-87]: 'GNUTLS_E_NO_CIPHER_SUITES', [-110]: 'GNUTLS_E_PREMATURE_TERMINATION', [-112]: 'GNUTLS_E_CERTIFICATE_REQUIRED',
  [-344]: 'GNUTLS_E_NO_APPLICATION_PROTOCOL', [-348]: 'GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR',
};

const ERR_LIB_SSL = 20;
const ERR_LIB_SYS = 2;

/** What the library said, as OpenSSL or GnuTLS print it; undefined when it said nothing. */
export function tlsErrorText(library: number, ret: number, errLib: number, reason: number): string | undefined {
  if (library === tg_tls_library.TG_TLS_LIB_GNUTLS) return GNUTLS_ERRORS[ret] ?? `GnuTLS error ${ret}`;
  if (errLib === ERR_LIB_SSL && reason) {
    if (SSL_REASONS[reason]) return SSL_REASONS[reason];
    const alert = ALERTS[reason - 1000];
    if (alert) return `alert ${alert} received`;
    return `SSL error reason ${reason}`;
  }
  // ERR_LIB_SYS's reason is the errno.
  if (errLib === ERR_LIB_SYS && reason) return `system error ${reason}`;
  return undefined;
}

export function verifyText(code: number): string { return VERIFY_RESULTS[code] ?? `verify error ${code}`; }

/** Attributes a protocol bound before the handshake gives the connection (PostgreSQL's SSLRequest). */
const DECODER_ATTRIBUTES: Record<string, Record<string, string>> = {
  pgsql: { 'db.system.name': 'postgresql' },
};

const SIDE = ['unknown', 'client', 'server'] as const;

/** The span of one TG_EV_TLS_HANDSHAKE record at `off`; `conn` is the connection as the record
 *  names it (without a socket known, only pid/comm/side), `decoder` the one its cleartext went to. */
export function handshakeSpan(dv: DataView, off: number, conn: ConnMeta, decoder: string | undefined, clock: SpanClock) {
  const f = (o: number) => off + o;
  const outcome = dv.getUint8(f(tg_tls_handshake_event.outcome));
  const library = dv.getUint8(f(tg_tls_handshake_event.library));
  const side = dv.getUint8(f(tg_tls_handshake_event.side));
  const hasConn = dv.getUint8(f(tg_tls_handshake_event.has_conn)) !== 0;
  const ret = dv.getInt32(f(tg_tls_handshake_event.ret), true);
  const errLib = dv.getUint32(f(tg_tls_handshake_event.err_lib), true);
  const reason = dv.getUint32(f(tg_tls_handshake_event.err_reason), true);
  const verify = dv.getInt32(f(tg_tls_handshake_event.verify), true);
  if (!hasConn || conn.role === 'unknown') conn.role = SIDE[side] ?? 'unknown';
  const a: Record<string, string | number | boolean> = {
    'tls.protocol.name': 'tls',
    'tls.established': false,
    'error.type': 'tls.handshake_failed',
    'telegen.tls.library': library === tg_tls_library.TG_TLS_LIB_GNUTLS ? 'gnutls' : 'openssl',
  };
  const err = tlsErrorText(library, ret, errLib, reason);
  if (err) a['telegen.tls.error'] = err;
  if (library === tg_tls_library.TG_TLS_LIB_GNUTLS) a['telegen.tls.error_code'] = ret;
  else if (reason) a['telegen.tls.error_code'] = reason;
  if (verify > 0) {
    a['telegen.tls.verify_result'] = verifyText(verify);
    a['telegen.tls.verify_result_code'] = verify;
  }
  const rec: DecodedRecord = {
    kind: KIND_EXCHANGE, flags: FLAG_ERROR, stream: 0,
    tsStart: dv.getBigUint64(f(tg_tls_handshake_event.start_ns), true),
    tsEnd: dv.getBigUint64(f(tg_tls_handshake_event.ts_ns), true),
    attributes: a,
  };
  const span = recordToSpan(rec, conn, 'TLS handshake', { clock });
  if (!span) return undefined;
  const attrs = span.attributes as Record<string, unknown>;
  Object.assign(attrs, decoder ? DECODER_ATTRIBUTES[decoder] : undefined);
  if (!hasConn) {
    for (const k of ['server.address', 'server.port', 'client.address', 'client.port', 'network.peer.address', 'network.peer.port', 'network.type']) delete attrs[k];
  }
  const why = verify > 0 ? `${err ?? 'certificate verify failed'}: ${verifyText(verify)}` : err;
  span.status.code = SpanStatusCode.ERROR;
  span.status.message = outcome === tg_tls_hs_outcome.TG_TLS_HS_INCOMPLETE
    ? 'TLS handshake not completed: the connection ended before it'
    : outcome === tg_tls_hs_outcome.TG_TLS_HS_REJECTED || outcome === tg_tls_hs_outcome.TG_TLS_HS_UNVERIFIED
      ? `TLS handshake completed but the peer's certificate was rejected: ${verify > 0 ? verifyText(verify) : why}`
      : `TLS handshake failed${why ? `: ${why}` : ''}`;
  return span;
}

/** Handshake records → spans. A certificate the caller was told did not verify (UNVERIFIED) is a
 *  failure only if the connection then closes without plaintext: held until the kernel side says
 *  plaintext moved (USED, which comes before the close in the ring) or the connection is gone. */
export class HandshakeFailures {
  private readonly held = new Map<bigint, { span: ReadableSpan; conn: ConnMeta; side: number }>();
  /** Rejections decided here, by side (enum tg_role), for telegen.tls.handshakes. */
  readonly rejected = [0, 0, 0];

  constructor(private readonly clock: SpanClock, private readonly out: (span: ReadableSpan, conn: ConnMeta) => void) {}

  onRecord(dv: DataView, off: number, conn: ConnMeta, decoder: string | undefined): ReadableSpan | undefined {
    const outcome = dv.getUint8(off + tg_tls_handshake_event.outcome);
    const id = conn.connId ?? 0n;
    if (outcome === tg_tls_hs_outcome.TG_TLS_HS_USED) { this.held.delete(id); return undefined; }
    const side = dv.getUint8(off + tg_tls_handshake_event.side);
    const span = handshakeSpan(dv, off, conn, decoder, this.clock);
    if (!span) return undefined;
    if (outcome === tg_tls_hs_outcome.TG_TLS_HS_UNVERIFIED) { this.held.set(id, { span, conn, side }); return undefined; }
    this.out(span, conn);
    return span;
  }

  /** Reports the held ones whose connection closed; returns them. */
  tick(isOpen: (connId: bigint) => boolean): ReadableSpan[] {
    const done: ReadableSpan[] = [];
    for (const [id, h] of this.held) {
      if (isOpen(id)) continue;
      this.held.delete(id);
      this.rejected[h.side] = (this.rejected[h.side] ?? 0) + 1;
      this.out(h.span, h.conn);
      done.push(h.span);
    }
    return done;
  }
}

/** telegen.tls.handshakes from the tls_stats counters: [index, outcome, side]. */
export const HANDSHAKE_STATS: ReadonlyArray<[number, 'ok' | 'failed', string]> = [
  [tg_tls_stat.TG_TLS_STAT_HS_OK_CLIENT, 'ok', 'client'],
  [tg_tls_stat.TG_TLS_STAT_HS_OK_SERVER, 'ok', 'server'],
  [tg_tls_stat.TG_TLS_STAT_HS_OK_UNKNOWN, 'ok', 'unknown'],
  [tg_tls_stat.TG_TLS_STAT_HS_FAILED_CLIENT, 'failed', 'client'],
  [tg_tls_stat.TG_TLS_STAT_HS_FAILED_SERVER, 'failed', 'server'],
  [tg_tls_stat.TG_TLS_STAT_HS_FAILED_UNKNOWN, 'failed', 'unknown'],
];

/** Where a one-load getter reads its field: `mov eax|rax, [rdi + d]` then `ret` (x86-64, an
 *  optional endbr64 before and `xor edi, edi` between), `ldr w0|x0, [x0, #d]` then `ret` (arm64). */
export function getterOffset(code: Buffer, arch = process.arch): number {
  if (arch === 'arm64') {
    if (code.length < 8 || code.readUInt32LE(4) !== 0xd65f03c0) return 0;
    const insn = code.readUInt32LE(0);
    // `&` yields a signed 32-bit value: back to unsigned before comparing.
    const op = (insn & 0xffc003ff) >>> 0;
    if (op === 0xb9400000) return ((insn >>> 10) & 0xfff) * 4;
    if (op === 0xf9400000) return ((insn >>> 10) & 0xfff) * 8;
    return 0;
  }
  if (arch !== 'x64') return 0;
  let i = code.subarray(0, 4).equals(Buffer.from([0xf3, 0x0f, 0x1e, 0xfa])) ? 4 : 0;
  if (code[i] === 0x48) i++;
  if (code[i] !== 0x8b) return 0;
  let d: number;
  if (code[i + 1] === 0x47) { d = code.readInt8(i + 2); i += 3; } else if (code[i + 1] === 0x87) { d = code.readInt32LE(i + 2); i += 6; } else return 0;
  if (code[i] === 0x31 && code[i + 1] === 0xff) i += 2;
  return code[i] === 0xc3 && d > 0 ? d : 0;
}

/** The attach cookie of the handshake programs for an OpenSSL file: SSL_in_init's field offset
 *  << 32 | SSL_get_verify_result's (bpf/tls.bpf.c ssl_field); 0 for what is not found. */
export function sslFieldCookie(file: string, symbolOffset: (file: string, func: string) => number): number {
  const at = (func: string): number => {
    let fd = -1;
    try {
      const off = symbolOffset(file, func);
      if (off < 0) return 0;
      const buf = Buffer.alloc(16);
      fd = fs.openSync(file, 'r');
      fs.readSync(fd, buf, 0, buf.length, off);
      return getterOffset(buf);
    } catch {
      return 0;
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  };
  return at('SSL_in_init') * 2 ** 32 + at('SSL_get_verify_result');
}

/** File offsets of the PLT stubs through which a shared library calls the imported `names`
 *  (x86-64: .plt.sec entry i, or .plt entry i + 1, for .rela.plt entry i). A uprobe there sees
 *  that library's calls only: libssl's ERR_vset_error/ERR_set_error are its own errors, where one
 *  on libcrypto's ERR_vset_error also trapped every error libcrypto raises and pops again —
 *  about 700 for one curl loading the system CA bundle (OSSL_DECODER tries each format per
 *  certificate), at 3-4 µs each. */
export function pltStubs(file: string, names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const elf = openElf(file);
  if (!elf) return out;
  try {
    if (elf.machine !== EM_X86_64 || !elf.is64 || !elf.le) return out;
    const rela = section(elf, '.rela.plt'), dynsym = section(elf, '.dynsym'), dynstr = section(elf, '.dynstr');
    const pltSec = section(elf, '.plt.sec'), plt = section(elf, '.plt');
    if (!rela || !dynsym || !dynstr || !(pltSec || plt)) return out;
    const want = new Set(names);
    const r = sectionBytes(elf, rela);
    for (let i = 0; (i + 1) * 24 <= r.length; i++) {
      const sym = Number(r.readBigUInt64LE(i * 24 + 8) >> 32n);
      const ent = readAt(elf.fd, dynsym.offset + sym * 24, 24);
      if (ent.length < 24) continue;
      const nameAt = dynstr.offset + ent.readUInt32LE(0);
      const raw = readAt(elf.fd, nameAt, 64);
      const end = raw.indexOf(0);
      const name = raw.toString('latin1', 0, end < 0 ? raw.length : end);
      if (!want.has(name)) continue;
      const stub = pltSec ? pltSec.addr + 16 * i : plt!.addr + 16 * (i + 1);
      const off = fileOffset(elf, stub);
      if (off >= 0) out.set(name, off);
    }
    return out;
  } finally {
    fs.closeSync(elf.fd);
  }
}
