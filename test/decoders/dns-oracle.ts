// DNS agreement with tshark: replays a capture through the dns decoder and checks every DNS
// message tshark decoded (its fields as in ../shared/corpus/SOURCES.md) against the records.
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import { execFileSync } from 'child_process';
import { loadDecoder, Harness } from '../helpers/decoder';
import { replayFile } from '../../host/src/replay';
import { DIR_REQUEST, DIR_RESPONSE, FLAG_NO_REQUEST, FLAG_NO_RESPONSE, KIND_EXCHANGE } from '../../decoders/abi/abi';
import type { DecodedRecord } from '../../host/src/decoders/records';
import { FLAG_ERROR } from '../../decoders/abi/abi';

export const TSV_FIELDS = [
  'frame.number', 'tcp.stream', 'udp.stream', 'dns.id', 'dns.flags.response', 'dns.flags.opcode', 'dns.flags.rcode',
  'dns.flags.truncated', 'dns.count.queries', 'dns.count.answers', 'dns.count.auth_rr', 'dns.count.add_rr',
  'dns.qry.name', 'dns.qry.type', 'dns.resp.name', 'dns.resp.type', 'dns.resp.ttl', 'dns.a', 'dns.aaaa', 'dns.cname',
  'dns.ns', 'dns.txt', 'dns.mx.mail_exchange', 'dns.srv.target', 'dns.ptr.domain_name',
];

/** The tshark invocation that made the corpus' *.expected.tsv, without the DNS messages quoted
 *  inside ICMP errors (a query to a closed port comes back in a port-unreachable: not a message
 *  anyone received, and no corpus capture has one). */
export function tsharkTsv(pcap: string, decodeAs: string[] = []): string {
  const args = ['-r', pcap, ...decodeAs.flatMap((d) => ['-d', d]), '-Y', 'dns && !icmp && !icmpv6', '-T', 'fields', '-E', 'header=y', '-E', 'separator=/t',
    '-E', 'occurrence=a', '-E', 'aggregator=|', '-E', 'quote=n', ...TSV_FIELDS.flatMap((f) => ['-e', f])];
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

const RCODES: Record<string, string> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 6: 'YXDOMAIN', 7: 'YXRRSET',
  8: 'NXRRSET', 9: 'NOTAUTH', 10: 'NOTZONE',
};
// IANA RR TYPE mnemonics, as tshark names them in dns.qry.type / dns.resp.type.
const TYPES: Record<string, string> = {
  1: 'A', 2: 'NS', 3: 'MD', 4: 'MF', 5: 'CNAME', 6: 'SOA', 7: 'MB', 8: 'MG', 9: 'MR', 10: 'NULL', 11: 'WKS',
  12: 'PTR', 13: 'HINFO', 14: 'MINFO', 15: 'MX', 16: 'TXT', 17: 'RP', 18: 'AFSDB', 19: 'X25', 20: 'ISDN', 21: 'RT',
  22: 'NSAP', 23: 'NSAP-PTR', 24: 'SIG', 25: 'KEY', 26: 'PX', 27: 'GPOS', 28: 'AAAA', 29: 'LOC', 30: 'NXT',
  31: 'EID', 32: 'NIMLOC', 33: 'SRV', 34: 'ATMA', 35: 'NAPTR', 36: 'KX', 37: 'CERT', 38: 'A6', 39: 'DNAME',
  40: 'SINK', 41: 'OPT', 42: 'APL', 43: 'DS', 44: 'SSHFP', 45: 'IPSECKEY', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY',
  49: 'DHCID', 50: 'NSEC3', 51: 'NSEC3PARAM', 52: 'TLSA', 53: 'SMIMEA', 55: 'HIP', 56: 'NINFO', 57: 'RKEY',
  58: 'TALINK', 59: 'CDS', 60: 'CDNSKEY', 61: 'OPENPGPKEY', 62: 'CSYNC', 63: 'ZONEMD', 64: 'SVCB', 65: 'HTTPS',
  99: 'SPF', 100: 'UINFO', 101: 'UID', 102: 'GID', 103: 'UNSPEC', 104: 'NID', 105: 'L32', 106: 'L64', 107: 'LP',
  108: 'EUI48', 109: 'EUI64', 249: 'TKEY', 250: 'TSIG', 251: 'IXFR', 252: 'AXFR', 253: 'MAILB', 254: 'MAILA',
  255: 'ANY', 256: 'URI', 257: 'CAA', 258: 'AVC', 259: 'DOA', 260: 'AMTRELAY', 261: 'RESINFO', 32768: 'TA',
  32769: 'DLV',
};
export const typeName = (n: string): string => TYPES[n] ?? `TYPE${n}`;

/** One DNS message as tshark saw it. `answers` only when its row held just this message. */
export interface TsharkMsg {
  frame: number;
  id: number;
  response: boolean;
  rcode?: string;
  truncated: boolean;
  qname?: string;
  qtype?: string;
  /** answer, authority, additional; undefined for UPDATE (tshark names them zone/prerequisite/update) */
  counts?: [number, number, number];
  /** per answer-section RR: the value tshark printed for it, '*' when it prints none we compare */
  answers?: string[];
  /** the RR type of each of `answers` */
  answerTypes?: string[];
  txt?: string;
}

export function parseTsv(text: string): TsharkMsg[] {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const cols = lines[0].split('\t');
  const out: TsharkMsg[] = [];
  for (const line of lines.slice(1)) {
    const f = line.split('\t');
    const v = (name: string): string[] => {
      const i = cols.indexOf(name);
      const x = i < 0 ? '' : (f[i] ?? '');
      return x === '' ? [] : x.split('|');
    };
    const ids = v('dns.id');
    const single = ids.length === 1;
    ids.forEach((id, i) => {
      const response = v('dns.flags.response')[i] === '1';
      const m: TsharkMsg = {
        frame: Number(v('frame.number')[0]),
        id: Number(id),
        response,
        truncated: v('dns.flags.truncated')[i] === '1',
      };
      if (v('dns.count.answers')[i] !== undefined) {
        m.counts = [Number(v('dns.count.answers')[i]), Number(v('dns.count.auth_rr')[i]), Number(v('dns.count.add_rr')[i])];
      }
      if (Number(v('dns.count.queries')[i]) >= 1 && single) {
        m.qname = v('dns.qry.name')[0];
        m.qtype = typeName(v('dns.qry.type')[0]);
      } else if (!single) {
        // several messages in one row: their first questions line up one per message
        m.qname = v('dns.qry.name')[i];
        m.qtype = v('dns.qry.type')[i] !== undefined ? typeName(v('dns.qry.type')[i]) : undefined;
      }
      if (response) m.rcode = RCODES[v('dns.flags.rcode')[i]] ?? `RCODE${v('dns.flags.rcode')[i]}`;
      if (response && single) answersOf(m, v);
      out.push(m);
    });
  }
  return out;
}

/** Walks dns.resp.type over all sections; each type's value column is consumed in RR order. */
function answersOf(m: TsharkMsg, v: (name: string) => string[]): void {
  const types = v('dns.resp.type');
  const column: Record<string, string[]> = {
    1: v('dns.a'), 28: v('dns.aaaa'), 5: v('dns.cname'), 2: v('dns.ns'), 15: v('dns.mx.mail_exchange'),
    33: v('dns.srv.target'), 12: v('dns.ptr.domain_name'),
  };
  const cursor: Record<string, number> = {};
  const answers: string[] = [];
  const answerTypes: string[] = [];
  let txtElsewhere = false;
  types.forEach((t, i) => {
    const inAnswers = i < (m.counts?.[0] ?? 0);
    let value = '*';
    if (column[t]) {
      cursor[t] = (cursor[t] ?? 0) + 1;
      value = column[t][cursor[t] - 1];
    }
    if (t === '16' && !inAnswers) txtElsewhere = true;
    if (!inAnswers) return;
    // RRSIGs are not answers for the decoder unless asked for
    if (t === '46' && m.qtype !== 'RRSIG' && m.qtype !== 'ANY') return;
    answers.push(t === '16' ? 'TXT' : value);
    answerTypes.push(t);
  });
  m.answers = answers;
  m.answerTypes = answerTypes;
  if (!txtElsewhere && types.includes('16')) m.txt = v('dns.txt').join('');
}

export interface ReplayResult { h: Harness; exchanges: DecodedRecord[] }

export async function replayDns(pcap: string): Promise<ReplayResult> {
  const h = loadDecoder('dns');
  await replayFile(pcap, {
    onOpen: () => undefined,
    onData: (c, fromClient, bytes, ts) => { h.inst.feed(c.id, fromClient ? DIR_REQUEST : DIR_RESPONSE, bytes, ts); },
    onGap: (c, fromClient, lost) => { h.inst.gap(c.id, fromClient ? DIR_REQUEST : DIR_RESPONSE, lost); },
    onClose: (c) => { h.inst.closeStream(c.id); },
  });
  return { h, exchanges: h.records.filter((r) => r.kind === KIND_EXCHANGE) };
}

function sameName(a: unknown, b: string | undefined): boolean {
  if (b === undefined) return a === undefined;
  if (b === '<Root>') return a === '.';
  return a === b;
}

/** Every message tshark decoded has its counterpart, with the same values; nothing extra. */
export function assertAgrees(msgs: TsharkMsg[], res: ReplayResult, label: string): { queries: number; responses: number; answers: number } {
  const { h, exchanges } = res;
  assert.equal(h.inst.counters.traps, 0, `${label}: trap ${h.inst.lastError}`);
  assert.equal(h.inst.counters.invalid, 0, `${label}: a stream was refused`);
  const withResponse = exchanges.filter((r) => !(r.flags & FLAG_NO_RESPONSE));
  const withQuery = exchanges.filter((r) => !(r.flags & FLAG_NO_REQUEST));
  const usedR = new Set<DecodedRecord>();
  const usedQ = new Set<DecodedRecord>();
  let answers = 0;
  for (const m of msgs) {
    const where = `${label} frame ${m.frame} id 0x${m.id.toString(16)}`;
    const pool = m.response ? withResponse : withQuery;
    const used = m.response ? usedR : usedQ;
    const candidates = pool.filter((r) => !used.has(r) && r.attributes['telegen.dns.id'] === m.id &&
      (m.qname === undefined || sameName(r.attributes['dns.question.name'], m.qname)));
    // several responses with one id (a zone transfer's messages): the one with these counts
    const rec = candidates.find((r) => m.counts !== undefined && m.response && r.attributes['telegen.dns.answer_count'] === m.counts[0] &&
      r.attributes['telegen.dns.authority_count'] === m.counts[1] && r.attributes['telegen.dns.additional_count'] === m.counts[2]) ?? candidates[0];
    assert.ok(rec, `${where}: no record for this ${m.response ? 'response' : 'query'} (${m.qname})`);
    used.add(rec);
    const a = rec.attributes;
    if (m.qtype !== undefined) assert.equal(a['dns.question.type'], m.qtype, `${where}: qtype`);
    if (!m.response) continue;
    assert.equal(a['dns.response_code'], m.rcode, `${where}: rcode`);
    assert.equal(a['telegen.dns.truncated'], m.truncated, `${where}: TC`);
    if (m.counts !== undefined) {
      assert.deepEqual([a['telegen.dns.answer_count'], a['telegen.dns.authority_count'], a['telegen.dns.additional_count']], m.counts, `${where}: counts`);
    }
    if (m.answers === undefined) continue;
    const got = (a['dns.answers'] as string[] | undefined) ?? [];
    assert.equal(got.length, m.answers.length, `${where}: answers ${JSON.stringify(got)} vs tshark ${JSON.stringify(m.answers)}`);
    m.answers.forEach((want, i) => {
      if (want === '*' || want === 'TXT') return;
      // MX and SRV: tshark's column holds the exchange/target, ours leads with the numbers
      // (a name may hold spaces: DNS-SD instance names)
      const skip = m.answerTypes?.[i] === '15' ? 1 : m.answerTypes?.[i] === '33' ? 3 : 0;
      const mine = skip ? got[i].split(' ').slice(skip).join(' ') : got[i];
      assert.equal(mine, want, `${where}: answer ${i}`);
      answers++;
    });
    if (m.txt !== undefined) {
      const txt = got.filter((_, i) => m.answers![i] === 'TXT');
      assert.equal(txt.join(''), m.txt, `${where}: TXT`);
      answers += txt.length;
    }
  }
  const queries = msgs.filter((m) => !m.response).length;
  const responses = msgs.length - queries;
  assert.equal(withResponse.length, responses, `${label}: responses decoded vs tshark`);
  assert.equal(withQuery.length, queries, `${label}: queries decoded vs tshark`);
  return { queries, responses, answers };
}

export function readTsv(file: string): TsharkMsg[] {
  return parseTsv(fs.readFileSync(file, 'utf8'));
}

export const BIG = 'x'.repeat(250);

/** What a user sees for each lookup of the live dnsmasq scenario (dns-live.test.ts; also run over
 *  the capture of it committed in decoders/dns/testdata). */
export function checkLookups(recs: DecodedRecord[]): void {
  const one = (name: string, type: string, pred: (r: DecodedRecord) => boolean = () => true): DecodedRecord => {
    const found = recs.filter((r) => r.attributes['dns.question.name'] === name && r.attributes['dns.question.type'] === type && pred(r));
    assert.equal(found.length, 1, `${name} ${type}: ${found.length} records`);
    const r = found[0];
    assert.equal(r.flags & (FLAG_NO_REQUEST | FLAG_NO_RESPONSE), 0, `${name} ${type} is a whole exchange`);
    assert.ok(r.tsEnd >= r.tsStart);
    return r;
  };
  const answers = (name: string, type: string) => one(name, type).attributes['dns.answers'];
  assert.deepEqual(answers('www.example.test', 'A'), ['10.1.2.4']);
  assert.deepEqual(answers('www.example.test', 'AAAA'), ['2001:db8::4']);
  assert.deepEqual(answers('alias2.example.test', 'A'), ['alias.example.test', 'www.example.test', '10.1.2.4']);
  assert.deepEqual(answers('txt.example.test', 'TXT'), ['v=spf1 -all']);
  assert.deepEqual(answers('example.test', 'MX'), ['10 mail.example.test']);
  assert.deepEqual(answers('_sip._udp.example.test', 'SRV'), ['0 5 5060 sip.example.test']);
  assert.deepEqual(answers('4.2.1.10.in-addr.arpa', 'PTR'), ['www.example.test']);
  assert.deepEqual(answers('svc.example.test', 'HTTPS'), ['1 . alpn=h2,h3 port=8443 ipv4hint=10.1.2.5 ipv6hint=2001:db8::5']);
  assert.deepEqual(answers('example.test', 'CAA'), ['0 issue "ca.example.net"']);
  assert.deepEqual(answers('node.example.test', 'A'), ['10.1.2.3']);
  assert.deepEqual(answers('node-mx.example.test', 'MX'), ['20 mail2.example.test']);
  const nx = one('foo.nx.test', 'A');
  assert.equal(nx.attributes['dns.response_code'], 'NXDOMAIN');
  assert.equal(nx.flags, 0, 'NXDOMAIN is an answer, not a failed exchange');
  const refused = one('outside.invalid', 'A');
  assert.equal(refused.attributes['dns.response_code'], 'REFUSED');
  assert.equal(refused.flags, FLAG_ERROR);
  assert.equal(refused.attributes['error.type'], 'REFUSED');
  // the big TXT: truncated over UDP, then whole over TCP
  const bigUdp = one('big.example.test', 'TXT', (r) => r.attributes['telegen.dns.truncated'] === true);
  assert.equal(bigUdp.attributes['telegen.dns.flags'], 'qr aa tc rd ra');
  const bigTcp = one('big.example.test', 'TXT', (r) => r.attributes['telegen.dns.truncated'] === false);
  assert.deepEqual([...(bigTcp.attributes['dns.answers'] as string[])].sort(), [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `${i}${BIG}`));
  assert.equal(bigTcp.attributes['telegen.dns.answer_count'], 8);
  // dig's EDNS: 1232-byte buffer, a client cookie, DO only with +dnssec
  const dnssec = one('other.example.test', 'A');
  assert.equal(dnssec.attributes['telegen.dns.edns.do'], true);
  assert.equal(dnssec.attributes['telegen.dns.edns.udp_payload_size'], 1232);
  assert.deepEqual(dnssec.attributes['telegen.dns.edns.options'], ['COOKIE']);
  assert.equal(one('a.example.test', 'A').attributes['telegen.dns.edns.do'], false);
  assert.equal(one('noedns.example.test', 'A').attributes['telegen.dns.edns.udp_payload_size'], undefined);
  const tcpA = one('tcp.example.test', 'A');
  assert.deepEqual(tcpA.attributes['dns.answers'], ['10.1.2.3']);
  // two queries on one kept-open TCP connection
  assert.deepEqual(answers('a.example.test', 'A'), ['10.1.2.3']);
  assert.deepEqual(answers('b.example.test', 'A'), ['10.1.2.3']);
}

/** getaddrinfo from Python and from Node: an A and an AAAA lookup each, and Python's NXDOMAIN;
 *  dig to port 5353 (UDP 5353, which tshark needs told is DNS). */
export function checkGetaddrinfo(recs: DecodedRecord[]): void {
  const of = (name: string, type: string) => recs.filter((r) => r.attributes['dns.question.name'] === name && r.attributes['dns.question.type'] === type);
  const a = of('gai.example.test', 'A');
  const aaaa = of('gai.example.test', 'AAAA');
  assert.ok(a.length >= 2 && aaaa.length >= 2, `A ${a.length}, AAAA ${aaaa.length}`);
  for (const r of a) assert.deepEqual([r.flags, r.attributes['dns.answers']], [0, ['10.1.2.7']]);
  for (const r of aaaa) assert.deepEqual([r.flags, r.attributes['dns.answers']], [0, ['2001:db8::7']]);
  const nx = [...of('nope.nx.test', 'A'), ...of('nope.nx.test', 'AAAA')];
  assert.ok(nx.length >= 1);
  for (const r of nx) assert.deepEqual([r.flags, r.attributes['dns.response_code']], [0, 'NXDOMAIN']);
  const mdnsPort = of('printer.local', 'A');
  assert.equal(mdnsPort.length, 1);
  assert.deepEqual(mdnsPort[0].attributes['dns.answers'], ['10.1.2.8']);
}
