// Corpus agreement: every DNS message tshark decodes in ../shared/corpus/pcap/dns (queries and
// responses, names, types, rcodes, TC, section counts, answer data) is in the dns decoder's records
// when the capture is replayed through it, and the decoder reports nothing tshark did not see.
import { test } from 'node:test';
import * as fs from 'fs';
import * as path from 'path';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'child_process';
import { corpusDir, repoRoot } from '../helpers/decoder';
import { readTsv, replayDns, assertAgrees, checkLookups, checkGetaddrinfo } from './dns-oracle';
import { FLAG_NO_REQUEST, FLAG_ERROR, FLAG_NO_RESPONSE } from '../../decoders/abi/abi';
import type { DecodedRecord } from '../../host/src/decoders/records';

const dir = path.join(corpusDir, 'pcap', 'dns');
const captures = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /\.pcapn?g?$/.test(f)).sort() : [];

test('the DNS corpus is present', { skip: captures.length === 0 && `no corpus at ${dir}` }, () => undefined);

for (const file of captures) {
  const tsv = path.join(dir, file.replace(/\.pcapn?g?$/, '.expected.tsv'));
  test(`corpus ${file} agrees with tshark`, { skip: !fs.existsSync(tsv) && 'no expected.tsv' }, async (t) => {
    const res = await replayDns(path.join(dir, file));
    const n = assertAgrees(readTsv(tsv), res, file);
    t.diagnostic(`queries ${n.queries}, responses ${n.responses}, answer values compared ${n.answers}`);
  });
}

// RR data the TSV columns do not hold (HTTPS/SVCB, CAA, NAPTR), against tshark's own fields.
const haveTshark = spawnSync('tshark', ['-v'], { stdio: 'ignore' }).status === 0;
const RICH = ['zeek__dns-https.pcap', 'zeek__dns-svcb.pcap', 'zeek__dns-caa.pcap', 'zeek__naptr.pcap'].filter((f) => captures.includes(f));

for (const file of RICH) {
  test(`corpus ${file}: HTTPS/SVCB/CAA/NAPTR data agrees with tshark's fields`, { skip: !haveTshark && 'tshark not installed' }, async () => {
    const fields = ['dns.id', 'dns.svcb.svcpriority', 'dns.svcb.targetname', 'dns.svcb.svcparam.key', 'dns.svcb.svcparam.alpn',
      'dns.svcb.svcparam.port', 'dns.svcb.svcparam.ipv4hint.ip', 'dns.svcb.svcparam.ipv6hint.ip', 'dns.caa.flags', 'dns.caa.tag', 'dns.caa.value',
      'dns.naptr.order', 'dns.naptr.preference', 'dns.naptr.flags', 'dns.naptr.service', 'dns.naptr.regex', 'dns.naptr.replacement'];
    const out = execFileSync('tshark', ['-r', path.join(dir, file), '-Y', 'dns.flags.response==1', '-T', 'fields', '-E', 'separator=/t',
      '-E', 'occurrence=a', '-E', 'aggregator=|', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const res = await replayDns(path.join(dir, file));
    let compared = 0;
    for (const line of out.split('\n').filter(Boolean)) {
      const row = line.split('\t');
      const v = (name: string): string[] => (row[fields.indexOf(name)] ? row[fields.indexOf(name)].split('|') : []);
      const name = (n: string) => (n === '<Root>' ? '.' : n);
      const want: string[] = [];
      if (v('dns.svcb.svcpriority').length) {
        const params = v('dns.svcb.svcparam.key').map((k) => {
          switch (k) {
            case '1': return `alpn=${v('dns.svcb.svcparam.alpn').join(',')}`;
            case '2': return 'no-default-alpn';
            case '3': return `port=${v('dns.svcb.svcparam.port')[0]}`;
            case '4': return `ipv4hint=${v('dns.svcb.svcparam.ipv4hint.ip').join(',')}`;
            case '6': return `ipv6hint=${v('dns.svcb.svcparam.ipv6hint.ip').join(',')}`;
            default: throw new Error(`svcparam key ${k} not compared here`);
          }
        });
        want.push([v('dns.svcb.svcpriority')[0], name(v('dns.svcb.targetname')[0]), ...params].join(' '));
      }
      v('dns.caa.tag').forEach((tag, i) => want.push(`${Number(v('dns.caa.flags')[i])} ${tag} "${v('dns.caa.value')[i]}"`));
      v('dns.naptr.order').forEach((order, i) => want.push(`${order} ${v('dns.naptr.preference')[i]} "${v('dns.naptr.flags')[i] ?? ''}" ` +
        `"${v('dns.naptr.service')[i] ?? ''}" "${v('dns.naptr.regex')[i] ?? ''}" ${name(v('dns.naptr.replacement')[i])}`));
      const id = Number(v('dns.id')[0]);
      const rec = res.exchanges.find((r) => r.attributes['telegen.dns.id'] === id && r.attributes['dns.response_code'] !== undefined);
      assert.ok(rec, `response 0x${id.toString(16)}`);
      assert.deepEqual(rec.attributes['dns.answers'], want);
      compared += want.length;
    }
    assert.ok(compared > 0, 'tshark decoded some of these RRs');
  });
}

// Self-recorded captures (decoders/dns/testdata, made by dns-live.test.ts with
// TELEGEN_DNS_KEEP_CAPTURE): tshark's decoding is committed beside each, so no root or tshark needed.
const testdata = path.join(repoRoot, 'decoders', 'dns', 'testdata');
for (const file of fs.existsSync(testdata) ? fs.readdirSync(testdata).filter((f) => f.endsWith('.pcap')).sort() : []) {
  test(`testdata ${file} agrees with tshark and shows each lookup exactly`, async (t) => {
    const res = await replayDns(path.join(testdata, file));
    const msgs = readTsv(path.join(testdata, file.replace(/\.pcap$/, '.expected.tsv')));
    if (file.startsWith('heldout-unbound')) {
      // dig +edns=1: unbound answers header RCODE 0 with the OPT's extended RCODE 1, i.e. 16 BADVERS
      // (RFC 6891 6.1.3: the RCODE is the OPT's 8 bits above the header's 4). tshark's
      // dns.flags.rcode is the header's 4 bits alone (NOERROR): tshark is wrong here.
      const badvers = msgs.filter((m) => m.response && m.id === 0x3b68);
      assert.deepEqual(badvers.map((m) => m.rcode), ['NOERROR']);
      badvers[0].rcode = 'BADVERS';
    }
    const n = assertAgrees(msgs, res, file);
    t.diagnostic(`queries ${n.queries}, responses ${n.responses}, answer values compared ${n.answers}`);
    if (file.startsWith('dnsmasq-dig')) checkLookups(res.exchanges);
    if (file.startsWith('getaddrinfo')) checkGetaddrinfo(res.exchanges);
    if (file.startsWith('heldout-mdns')) checkMdns(res.exchanges);
    if (file.startsWith('heldout-sweep')) checkSweep(res.exchanges);
    if (file.startsWith('heldout-unbound')) checkUnbound(res.exchanges);
    if (file.startsWith('heldout-ede')) checkEde(res.exchanges, path.join(testdata, file));
  });
}

/**
 * heldout-unbound (testdata/heldout/record-unbound.sh: unbound serving an NSEC3-signed zone and a
 * validating unbound resolver in a network namespace with lo at MTU 1280, tcpdump -i any: Linux
 * cooked v2): 2.8 KiB TXT answers arrive as IPv4 and IPv6 fragments and are whole; types without a
 * presentation here are RFC 3597; BADVERS, NOTIMP (opcode STATUS), REFUSED; a query to a closed
 * forwarder (its ICMP port-unreachable quotes it; tshark lists the quote as a DNS message too) is
 * unanswered; the LLMNR port 5355 carries an answer like any DNS port.
 */
function checkUnbound(ex: DecodedRecord[]): void {
  const of = (name: string, type: string) => ex.filter((r) => r.attributes['dns.question.name'] === name && r.attributes['dns.question.type'] === type);
  const mid = of('mid.sig.test', 'TXT');
  assert.equal(mid.length, 3);
  for (const r of mid) assert.deepEqual([r.flags, (r.attributes['dns.answers'] as string[]).length, r.attributes['telegen.dns.truncated']], [0, 14, false]);
  // presentation formats of their RFCs (were RFC 3597 \\# hex), values as the zone file and tshark give them
  const first = (name: string, type: string) => (of(name, type)[0].attributes['dns.answers'] as string[])[0];
  assert.equal(first('sshfp.sig.test', 'SSHFP'), '1 1 0123456789abcdef0123456789abcdef01234567');
  assert.equal(first('tlsa.sig.test', 'TLSA'), '3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
  assert.equal(first('uri.sig.test', 'URI'), '10 1 "https://www.sig.test/"');
  assert.equal(first('hinfo.sig.test', 'HINFO'), '"x86" "Linux"');
  assert.equal(first('sub.sig.test', 'DS'), '12345 8 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
  assert.equal(first('sig.test', 'NSEC3PARAM'), '1 0 1 -');
  assert.match(first('sig.test', 'DNSKEY'), /^25[67] 3 13 [A-Za-z0-9+/]{86}==$/);
  assert.equal(first('loc.sig.test', 'LOC'), '52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m');
  assert.deepEqual(of('svc2.sig.test', 'SVCB')[0].attributes['dns.answers'], ['2 www.sig.test alpn=h2 port=443']);
  // ANY with DNSSEC: the RRSIGs in RFC 4034 presentation (were \\# hex); tshark: type covered 6/15, algorithm 13,
  // labels 2, TTL 300, expiration Dec 27 2026 07:40:32 UTC, inception Nov 29 2026 07:40:32 UTC, key tag 2064, signer sig.test
  const any = of('sig.test', 'ANY')[0].attributes['dns.answers'] as string[];
  assert.deepEqual(any.filter((a) => /^(SOA|MX) /.test(a)).map((a) => a.split(' ').slice(0, 8).join(' ')), [
    'SOA 13 2 300 20261227074032 20261129074032 2064 sig.test', 'MX 13 2 300 20261227074032 20261129074032 2064 sig.test']);
  assert.equal(any[1].split(' ')[8], Buffer.from('8ed84d75defd88da4cbf702bfd98ab9d4ae8c473fef619a8872a1d1339471f4a3d3b586bcfd2344b96e604b183e29ae575e3ee87ec4f6e7d6e6795f44279141a', 'hex').toString('base64'));
  const rc = (r: DecodedRecord) => [r.attributes['dns.response_code'] ?? null, r.attributes['telegen.dns.opcode'] ?? null, r.flags];
  assert.deepEqual(of('www.sig.test', 'A').map(rc).filter((x) => x[0] !== 'NOERROR'), [['BADVERS', null, 0], ['NOTIMP', 'STATUS', FLAG_ERROR]]);
  assert.deepEqual(of('foo.refused.test', 'A').map(rc), [['REFUSED', null, FLAG_ERROR]]);
  assert.ok(of('foo.dead.test', 'A').every((r) => r.flags === FLAG_NO_RESPONSE), 'the closed forwarder never answers');
}

/**
 * heldout-ede (testdata/heldout/record-ede.sh): unbound 1.17 with ede: yes refusing 127.0.0.0/8
 * answers REFUSED with Extended DNS Error 18 (Prohibited, RFC 8914) over UDP and TCP; the other
 * instance's answers carry none. The info code is the one tshark reads (dns.opt.ext_error.info_code).
 */
function checkEde(ex: DecodedRecord[], pcap: string): void {
  const brief = ex.map((r) => [r.attributes['dns.question.name'], r.attributes['dns.response_code'], r.attributes['telegen.dns.ede.info_code'] ?? null,
    r.attributes['telegen.dns.ede.extra_text'] ?? null, r.attributes['error.type'] ?? null]);
  assert.deepEqual(brief, [
    ['www.ede.test', 'REFUSED', 18, null, 'REFUSED'],
    ['blocked.ede.test', 'REFUSED', 18, null, 'REFUSED'],
    ['www.ede.test', 'REFUSED', 18, null, 'REFUSED'],
    ['www.ede.test', 'NOERROR', null, null, null],
    ['nx.ede.test', 'NXDOMAIN', null, null, null],
  ]);
  if (!haveTshark) return;
  const out = execFileSync('tshark', ['-r', pcap, '-d', 'udp.port==15371,dns', '-d', 'tcp.port==15371,dns', '-d', 'udp.port==15372,dns',
    '-Y', 'dns.flags.response==1', '-T', 'fields', '-e', 'dns.id', '-e', 'dns.opt.ext_error.info_code'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  for (const line of out.split('\n').filter(Boolean)) {
    const [id, code] = line.split('\t');
    const rec = ex.find((r) => r.attributes['telegen.dns.id'] === Number(id));
    assert.equal(rec?.attributes['telegen.dns.ede.info_code'], code ? Number(code) : undefined, `response ${id}`);
  }
}

/**
 * heldout-mdns (testdata/heldout/record-mdns.sh): an mDNS query (id 0) answered by a question-less
 * response for its name, around an announcement and a goodbye of another service (id 0, QR=1, no
 * question): only the answer pairs with the query (RFC 6762 6 and 18.1: the id of a multicast
 * response is ignored on reception; tshark pairs the announcement by id and is wrong). A response
 * nobody asked for is FLAG_NO_REQUEST; a TXT set cut by the 512-byte UDP limit is truncated and
 * dig's TCP retry is whole; NXDOMAIN and a CNAME chain as dnsmasq sends them.
 */
function checkMdns(ex: DecodedRecord[]): void {
  const brief = ex.map((r) => [r.flags, r.attributes['telegen.dns.id'], r.attributes['dns.question.name'] ?? null, (r.attributes['dns.answers'] as string[] | undefined)?.[0] ?? null]);
  assert.deepEqual(brief.slice(0, 4), [
    [FLAG_NO_REQUEST, 0, null, 'printer._ipp._tcp.local'],
    [0, 0, '_http._tcp.local', 'web._http._tcp.local'],
    [FLAG_NO_REQUEST, 0, null, 'printer._ipp._tcp.local'],
    [FLAG_NO_REQUEST, 0x4242, 'stray.example.test', '10.9.9.9'],
  ]);
  const big = ex.filter((r) => r.attributes['dns.question.name'] === 'big.example.test');
  assert.deepEqual(big.map((r) => [r.flags, r.attributes['telegen.dns.truncated'], (r.attributes['dns.answers'] as string[]).length]), [[0, true, 5], [0, false, 12], [0, true, 5]]);
  const nx = ex.find((r) => r.attributes['dns.question.name'] === 'missing.nx.test');
  assert.equal(nx?.attributes['dns.response_code'], 'NXDOMAIN');
  const chain = ex.find((r) => r.attributes['dns.question.name'] === 'a2.example.test');
  assert.deepEqual(chain?.attributes['dns.answers'], ['a1.example.test', 'www.example.test', '10.1.2.4']);
}

/**
 * heldout-sweep (testdata/heldout/record-sweep.sh, dnsmasq and dig): a TC answer then dig's TCP
 * retry (no EDNS, and at 1232), a ~3.9 KiB TXT answer in one EDNS UDP datagram and over TCP, the
 * client's EDNS options (cookie, client subnet, NSID), a CNAME chain over TCP, REFUSED (no upstream)
 * is an error and NXDOMAIN is not, a query whose upstream never answers is FLAG_NO_RESPONSE, and 64
 * queries in flight on one UDP socket with each id used for four names pair by id and name.
 */
function checkSweep(ex: DecodedRecord[]): void {
  const brief = (name: string, type: string) => ex.filter((r) => r.attributes['dns.question.name'] === name && r.attributes['dns.question.type'] === type)
    .map((r) => [r.flags, r.attributes['telegen.dns.truncated'] ?? null, r.attributes['telegen.dns.edns.udp_payload_size'] ?? null,
      ((r.attributes['dns.answers'] as string[] | undefined) ?? []).reduce((n, a) => n + a.length, 0)]);
  assert.deepEqual(brief('mid.sweep.test', 'TXT'), [[0, true, null, 0], [0, false, null, 812]]);
  assert.deepEqual(brief('big.sweep.test', 'TXT'), [[0, true, 1232, 0], [0, false, 1232, 3867], [0, false, 4096, 3867], [0, false, 1232, 3867]]);
  const opts = (type: string) => ex.filter((r) => r.attributes['dns.question.name'] === 'www.sweep.test' && r.attributes['dns.question.type'] === type)
    .map((r) => r.attributes['telegen.dns.edns.options']);
  assert.deepEqual(opts('A'), [['COOKIE'], ['NSID', 'ECS', 'COOKIE']]);
  assert.deepEqual(opts('AAAA'), [['ECS', 'COOKIE']]);
  assert.deepEqual(ex.find((r) => r.attributes['dns.question.name'] === 'c3.sweep.test' && r.attributes['dns.question.type'] === 'AAAA')?.attributes['dns.answers'],
    ['c2.sweep.test', 'c1.sweep.test', 'www.sweep.test', '2001:db8::9:1']);
  const rc = (name: string) => ex.filter((r) => r.attributes['dns.question.name'] === name).map((r) => [r.flags, r.attributes['dns.response_code'] ?? null, r.attributes['error.type'] ?? null]);
  assert.deepEqual(rc('nothing.nx.test'), [[0, 'NXDOMAIN', null]]);
  assert.deepEqual(rc('outside.example'), [[FLAG_ERROR, 'REFUSED', 'REFUSED']]);
  assert.deepEqual(rc('x.sf.test'), [[FLAG_NO_RESPONSE, null, null]]);
  const hosts = ex.filter((r) => /^h\d+\.sweep\.test$/.test(String(r.attributes['dns.question.name'])));
  assert.equal(hosts.length, 64);
  for (const r of hosts) {
    const i = Number(String(r.attributes['dns.question.name']).slice(1).split('.')[0]);
    assert.deepEqual([r.flags, r.attributes['telegen.dns.id'], r.attributes['dns.answers']], [0, 0x5000 + (i % 16), [`10.9.1.${i}`]]);
  }
}
