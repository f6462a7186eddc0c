// DNS decoder unit tests: messages built with dns-packet (the JS peer library) or by hand where
// dns-packet cannot (compression, SVCB/HTTPS, hostile bytes); exact attributes asserted.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadDecoder, Harness } from '../helpers/decoder';
import {
  KIND_EXCHANGE, FLAG_ERROR, FLAG_NO_RESPONSE, FLAG_NO_REQUEST, FLAG_UNKNOWN, FLAG_TIMEOUT, DIR_REQUEST, DIR_RESPONSE,
} from '../../decoders/abi/abi';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const dnsPacket: any = require('dns-packet');

const MS = 1_000_000n;

function query(id: number, name: string, type = 'A', extra: Record<string, unknown> = {}): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }], ...extra });
}

function response(id: number, name: string, type: string, answers: unknown[], extra: Record<string, unknown> = {}): Buffer {
  return dnsPacket.encode({
    type: 'response', id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type, name }], answers, ...extra,
  });
}

function tcp(buf: Buffer): Buffer {
  const out = Buffer.alloc(buf.length + 2);
  out.writeUInt16BE(buf.length, 0);
  buf.copy(out, 2);
  return out;
}

/** One UDP exchange on a fresh stream; returns the single record. */
function udpExchange(q: Buffer, r: Buffer, h: Harness = loadDecoder('dns'), stream = 1) {
  assert.equal(h.inst.feed(stream, DIR_REQUEST, q, 1000n * MS), 'ok');
  assert.equal(h.inst.feed(stream, DIR_RESPONSE, r, 1003n * MS), 'ok');
  assert.equal(h.records.length, 1, 'one record per exchange');
  return h.records[0];
}

function answersOf(type: string, answers: unknown[], name = 'example.com'): string[] {
  const rec = udpExchange(query(7, name, type), response(7, name, type, answers));
  return rec.attributes['dns.answers'] as string[];
}

test('meta names the protocol, ports and both transports', () => {
  const h = loadDecoder('dns');
  assert.equal(h.inst.meta.name, 'dns');
  assert.deepEqual(h.inst.meta.protocols, ['dns']);
  assert.deepEqual(h.inst.meta.ports, [53, 5353]);
  assert.equal(h.inst.meta.transport, 'both');
});

test('UDP A lookup: one exchange with every attribute', () => {
  const q = query(0x1234, 'www.Example.com', 'A', {
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK, options: [{ code: 'COOKIE', data: Buffer.alloc(8, 1) }] }],
  });
  const r = response(0x1234, 'www.Example.com', 'A', [
    { type: 'A', name: 'www.Example.com', ttl: 60, data: '93.184.216.34' },
    { type: 'A', name: 'www.Example.com', ttl: 60, data: '10.0.0.1' },
  ], { authorities: [{ type: 'NS', name: 'example.com', ttl: 60, data: 'ns1.example.com' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 }] });
  const rec = udpExchange(q, r);
  assert.equal(rec.kind, KIND_EXCHANGE);
  assert.equal(rec.flags, 0);
  assert.equal(rec.tsStart, 1000n * MS);
  assert.equal(rec.tsEnd, 1003n * MS);
  assert.deepEqual(rec.attributes, {
    'network.protocol.name': 'dns',
    'dns.question.name': 'www.Example.com',
    'dns.question.type': 'A',
    'telegen.dns.id': 0x1234,
    'telegen.dns.flags': 'qr rd ra',
    'dns.response_code': 'NOERROR',
    'dns.answers': ['93.184.216.34', '10.0.0.1'],
    'telegen.dns.answer_count': 2,
    'telegen.dns.authority_count': 1,
    'telegen.dns.additional_count': 1,
    'telegen.dns.truncated': false,
    'telegen.dns.edns.udp_payload_size': 1232,
    'telegen.dns.edns.do': true,
    'telegen.dns.edns.options': ['COOKIE'],
  });
});

test('answers of each RR type in presentation form, agreeing with dns-packet', () => {
  const cases: Array<[string, unknown[], string[]]> = [
    ['AAAA', [
      { type: 'AAAA', name: 'example.com', data: '2001:db8::1' },
      { type: 'AAAA', name: 'example.com', data: '::1' },
      { type: 'AAAA', name: 'example.com', data: '::' },
      { type: 'AAAA', name: 'example.com', data: '2001:db8:0:0:1:0:0:1' },
      { type: 'AAAA', name: 'example.com', data: '2001:0:0:1:0:0:0:1' },
      { type: 'AAAA', name: 'example.com', data: 'fe80::' },
      { type: 'AAAA', name: 'example.com', data: '2001:DB8:0:1:1:1:1:1' },
      { type: 'AAAA', name: 'example.com', data: '::ffff:192.0.2.1' },
    ], ['2001:db8::1', '::1', '::', '2001:db8::1:0:0:1', '2001:0:0:1::1', 'fe80::', '2001:db8:0:1:1:1:1:1', '::ffff:192.0.2.1']],
    ['CNAME', [{ type: 'CNAME', name: 'example.com', data: 'cname.example.com' }, { type: 'A', name: 'cname.example.com', data: '192.0.2.7' }], ['cname.example.com', '192.0.2.7']],
    ['NS', [{ type: 'NS', name: 'example.com', data: 'a.iana-servers.net' }], ['a.iana-servers.net']],
    ['PTR', [{ type: 'PTR', name: '1.2.0.192.in-addr.arpa', data: 'host.example.com' }], ['host.example.com']],
    ['MX', [{ type: 'MX', name: 'example.com', data: { preference: 10, exchange: 'mail.example.com' } }], ['10 mail.example.com']],
    ['TXT', [
      { type: 'TXT', name: 'example.com', data: 'v=spf1 -all' },
      { type: 'TXT', name: 'example.com', data: ['part one, ', 'part two'] },
      { type: 'TXT', name: 'example.com', data: [Buffer.from([0x61, 0x09, 0x62])] },
    ], ['v=spf1 -all', 'part one, part two', 'a\\009b']],
    ['SRV', [{ type: 'SRV', name: '_sip._udp.example.com', data: { priority: 0, weight: 5, port: 5060, target: 'sip.example.com' } }], ['0 5 5060 sip.example.com']],
    ['SOA', [{ type: 'SOA', name: 'example.com', data: { mname: 'ns.icann.org', rname: 'noc.dns.icann.org', serial: 2024081303, refresh: 7200, retry: 3600, expire: 1209600, minimum: 3600 } }],
      ['ns.icann.org noc.dns.icann.org 2024081303 7200 3600 1209600 3600']],
    ['CAA', [{ type: 'CAA', name: 'example.com', data: { flags: 128, tag: 'issue', value: 'letsencrypt.org' } }], ['128 issue "letsencrypt.org"']],
    ['NAPTR', [{ type: 'NAPTR', name: 'example.com', data: { order: 100, preference: 10, flags: 'S', services: 'SIP+D2U', regexp: '', replacement: '_sip._udp.example.com' } }],
      ['100 10 "S" "SIP+D2U" "" _sip._udp.example.com']],
    ['DS', [{ type: 'DS', name: 'example.com', data: { keyTag: 1, algorithm: 8, digestType: 2, digest: Buffer.from('abcd', 'hex') } }], ['1 8 2 abcd']],
    ['DNSKEY', [{ type: 'DNSKEY', name: 'example.com', data: { flags: 257, algorithm: 13, key: Buffer.from('abcdef', 'hex') } }], ['257 3 13 q83v']],
    ['HINFO', [{ type: 'HINFO', name: 'example.com', data: { cpu: 'x86', os: 'Linux' } }], ['"x86" "Linux"']],
    ['SSHFP', [{ type: 'SSHFP', name: 'example.com', data: { algorithm: 4, hash: 1, fingerprint: '0123456789abcdef0123456789abcdef01234567' } }], ['4 1 0123456789abcdef0123456789abcdef01234567']],
  ];
  for (const [type, answers, expected] of cases) {
    const qname = type === 'PTR' ? '1.2.0.192.in-addr.arpa' : type === 'SRV' ? '_sip._udp.example.com' : 'example.com';
    const got = answersOf(type, answers, qname);
    assert.deepEqual(got, expected, type);
    // The peer library decodes the same bytes to the same data.
    const decoded = dnsPacket.decode(response(7, qname, type, answers)).answers;
    if (type === 'A' || type === 'CNAME' || type === 'NS' || type === 'PTR') assert.deepEqual(got, decoded.map((a: any) => a.data));
    if (type === 'MX') assert.deepEqual(got, decoded.map((a: any) => `${a.data.preference} ${a.data.exchange}`));
    if (type === 'SRV') assert.deepEqual(got, decoded.map((a: any) => `${a.data.priority} ${a.data.weight} ${a.data.port} ${a.data.target}`));
    if (type === 'TXT') assert.deepEqual(got.slice(0, 2), decoded.slice(0, 2).map((a: any) => Buffer.concat(a.data).toString()));
  }
});

/** SVCB/HTTPS RDATA (RFC 9460 2.2), which dns-packet does not know. */
function svcbRdata(priority: number, target: string, params: Array<[number, Buffer]>): Buffer {
  const name = dnsPacket.name.encode(target);
  const parts = [Buffer.from([priority >> 8, priority & 255]), name];
  for (const [key, value] of params) {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(key, 0);
    h.writeUInt16BE(value.length, 2);
    parts.push(h, value);
  }
  return Buffer.concat(parts);
}

test('HTTPS and SVCB: priority, target and parameters', () => {
  const alpn = Buffer.from([2, ...Buffer.from('h3'), 2, ...Buffer.from('h2')]);
  const port = Buffer.from([0x01, 0xbb]);
  const v4 = Buffer.from([192, 0, 2, 1, 198, 51, 100, 2]);
  const v6 = Buffer.from('20010db8000000000000000000000001', 'hex');
  const mandatory = Buffer.from([0, 1, 0, 3]);
  const ech = Buffer.from('hello');
  const https = svcbRdata(1, '.', [[0, mandatory], [1, alpn], [2, Buffer.alloc(0)], [3, port], [4, v4], [5, ech], [6, v6], [65000, Buffer.from('x"y')]]);
  assert.deepEqual(answersOf('UNKNOWN_65', [{ type: 'UNKNOWN_65', name: 'example.com', data: https }]), [
    '1 . mandatory=alpn,port alpn=h3,h2 no-default-alpn port=443 ipv4hint=192.0.2.1,198.51.100.2 ech=aGVsbG8= ipv6hint=2001:db8::1 key65000="x\\"y"',
  ]);
  const alias = svcbRdata(0, 'svc.example.net', []);
  const rec = udpExchange(query(9, 'example.com', 'UNKNOWN_64'), response(9, 'example.com', 'UNKNOWN_64', [{ type: 'UNKNOWN_64', name: 'example.com', data: alias }]));
  assert.equal(rec.attributes['dns.question.type'], 'SVCB');
  assert.deepEqual(rec.attributes['dns.answers'], ['0 svc.example.net']);
  // A malformed port value falls back to the generic key form instead of lying.
  assert.deepEqual(answersOf('UNKNOWN_65', [{ type: 'UNKNOWN_65', name: 'example.com', data: svcbRdata(1, 'a.example', [[3, Buffer.from([1])]]) }]),
    ['1 a.example key3="\\001"']);
});

test('LOC (RFC 1876) as dig writes it: degrees minutes seconds.mmm, hemisphere, metres', () => {
  // RDATA and text both from dig 9.18 (+unknownformat, then plain) against unbound 1.17 serving
  // these zone lines; were RFC 3597 \\# hex.
  const cases: Array<[string, string]> = [
    ['000016138B3CF018810CBCE0009895B8', '52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m'],
    ['0033161389172DD070BE15F000988D20', '42 21 54.000 N 71 6 18.000 W -24.00m 30m 10000m 10m'],
    ['00121613791B7D2898E6486800989A68', '32 7 19.000 S 116 2 25.000 E 10.00m 1m 10000m 10m'],
    ['00122572800001F48000000000989B52', '0 0 0.500 N 0 0 0.000 E 12.34m 1m 2000m 7m'],
    ['009952516CB0270059604E00FFFFFFFF', '90 0 0.000 S 180 0 0.000 W 42849672.95m 90000000m 5m 0.50m'],
    // version 1 is not defined, 0xA0 is no digit pair, 91 degrees is no latitude: RFC 3597
    ['010016138B3CF018810CBCE0009895B8', '\\# 16 010016138b3cf018810cbce0009895b8'],
    ['00A016138B3CF018810CBCE0009895B8', '\\# 16 00a016138b3cf018810cbce0009895b8'],
    ['000016139386C780810CBCE0009895B8', '\\# 16 000016139386c780810cbce0009895b8'],
  ];
  for (const [hex, text] of cases) {
    assert.deepEqual(answersOf('LOC', [{ type: 'UNKNOWN_29', name: 'example.com', data: Buffer.from(hex, 'hex') }]), [text], hex);
  }
});

test('Extended DNS Errors (RFC 8914): the first EDE option\'s info code and extra text', () => {
  const ede = (code: number, text: string) => ({ code: 15, data: Buffer.concat([Buffer.from([code >> 8, code & 255]), Buffer.from(text)]) });
  const r = dnsPacket.encode({
    type: 'response', id: 5, flags: dnsPacket.RECURSION_DESIRED | 2, questions: [{ type: 'A', name: 'bogus.example' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [ede(6, 'validation failure <bogus.example. A IN>: no signatures'), ede(22, 'later')] }],
  });
  const rec = udpExchange(query(5, 'bogus.example'), r);
  assert.equal(rec.attributes['dns.response_code'], 'SERVFAIL');
  assert.equal(rec.attributes['error.type'], 'SERVFAIL');
  assert.equal(rec.attributes['telegen.dns.ede.info_code'], 6);
  assert.equal(rec.attributes['telegen.dns.ede.extra_text'], 'validation failure <bogus.example. A IN>: no signatures');
  // A code alone (unbound's 18 Prohibited); an option too short for a code is not one.
  const alone = dnsPacket.encode({ type: 'response', id: 6, flags: 5, questions: [{ type: 'A', name: 'x.example' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 15, data: Buffer.from([0]) }, ede(18, '')] }] });
  const rec2 = udpExchange(query(6, 'x.example'), alone);
  assert.equal(rec2.attributes['telegen.dns.ede.info_code'], 18);
  assert.equal(rec2.attributes['telegen.dns.ede.extra_text'], undefined);
});

test('RRSIG (RFC 4034 3.2) when asked for: covered type, algorithm, labels, TTL, UTC times, key tag, signer, base64', () => {
  // Times as YYYYMMDDHHmmSS in UTC: the epoch, a leap day, the last second a u32 holds (dates from JS Date).
  const stamp = (t: number) => new Date(t * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  for (const [expiration, inception] of [[1709210096, 0], [4294967295, 951782400]]) {
    const sig = Buffer.from('0123456789abcdef', 'hex');
    const rr = { type: 'RRSIG', name: 'example.com', ttl: 300, data: { typeCovered: 'A', algorithm: 13, labels: 2, originalTTL: 3600, expiration, inception, keyTag: 12345, signersName: 'example.com', signature: sig } };
    const got = answersOf('RRSIG', [rr]);
    assert.deepEqual(got, [`A 13 2 3600 ${stamp(expiration)} ${stamp(inception)} 12345 example.com ASNFZ4mrze8=`]);
  }
  assert.equal(new Date(1709210096 * 1000).toISOString(), '2024-02-29T12:34:56.000Z');
  // Answering an A question, the RRSIG proves the answer and is left out.
  const rrA = { type: 'RRSIG', name: 'example.com', data: { typeCovered: 'A', algorithm: 13, labels: 2, originalTTL: 60, expiration: 2, inception: 1, keyTag: 1, signersName: 'example.com', signature: Buffer.alloc(4) } };
  assert.deepEqual(answersOf('A', [{ type: 'A', name: 'example.com', data: '192.0.2.1' }, rrA]), ['192.0.2.1']);
});

test('NSEC and NSEC3 (RFC 4034 4.2, RFC 5155 3.3): next name or hashed owner, then the types of the bitmap', () => {
  // RDATA from dig 9.18 +unknownformat against unbound 1.17 serving these records; the text is
  // dig's but for names without the final dot and hex/base32hex in lower case (as DS, NSEC3PARAM).
  const cases: Array<[string, string, string]> = [
    ['NSEC', '01620474657374000006400100000003041B000000000000000000000000000000000000000000000000000020', 'b.test A MX RRSIG NSEC TYPE1234'],
    ['NSEC', '047465737400010140', 'test CAA'],
    ['NSEC3', '0101000C04AABBCCDD1417F3DF17B2B2ADAEF615257DE4D2020B80AC6C7D0006400000000002', '1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3t A RRSIG'],
    ['NSEC3', '010000000014' + '00'.repeat(20) + '000722000000000090', '1 0 0 - 00000000000000000000000000000000 NS SOA DNSKEY NSEC3PARAM'],
    // windows out of order, a zero-length window: RFC 3597
    ['NSEC', '0162000101400001014000', '\\# 11 0162000101400001014000'],
    ['NSEC', '01620000000000', '\\# 7 01620000000000'],
  ];
  for (const [type, hex, text] of cases) {
    const data = Buffer.from(hex, 'hex');
    const want = text.startsWith('\\#') ? `\\# ${data.length} ${data.toString('hex')}` : text;
    assert.deepEqual(answersOf(type, [{ type: `UNKNOWN_${type === 'NSEC' ? 47 : 50}`, name: 'example.com', data }]), [want], hex);
  }
});

test('RP, MINFO, AFSDB, RT, KX, SPF, OPENPGPKEY, DHCID, EUI48, EUI64, ZONEMD, CSYNC in their RFCs\' presentation', () => {
  // RDATA from dig 9.18 +unknownformat against unbound 1.17 serving these records, the text as dig
  // printed it (names without the final dot, hex in lower case as elsewhere here); were \\# hex.
  const cases: Array<[string, number, string, string]> = [
    ['RP', 17, '0561646D696E02727004746573740003747874027270047465737400', 'admin.rp.test txt.rp.test'],
    ['MINFO', 14, '05726D61696C02727004746573740005656D61696C027270047465737400', 'rmail.rp.test email.rp.test'],
    ['AFSDB', 18, '000103616673027270047465737400', '1 afs.rp.test'],
    ['RT', 21, '000A0572656C6179027270047465737400', '10 relay.rp.test'],
    ['KX', 36, '000A026B78027270047465737400', '10 kx.rp.test'],
    // dig: '"v=spf1 ip4:192.0.2.0/24" " -all"'; the strings of one RR read as one text, as TXT here
    ['SPF', 99, '17763D73706631206970343A3139322E302E322E302F323405202D616C6C', 'v=spf1 ip4:192.0.2.0/24 -all'],
    ['OPENPGPKEY', 61, '010203040506070809', 'AQIDBAUGBwgJ'],
    ['DHCID', 49, '000201636FC0B8271C82825BB1AC5C41CF5351AA69B4FEBD94E8F17CDB95000DA48C40', 'AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA='],
    ['EUI48', 108, '00005E00532A', '00-00-5e-00-53-2a'],
    ['EUI64', 109, '00005EEF1000002A', '00-00-5e-ef-10-00-00-2a'],
    ['ZONEMD', 63, '7848B78C0101FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE',
      '2018031500 1 1 febe3d4ce2ec2ffa4ba99d46cd69d6d29711e55217057bee7eb1a7b641a47ba7fed2dd5b97ae499fafa4f22c6bd647de'],
    ['CSYNC', 62, '000000420003000460000008', '66 3 A NS AAAA'],
    // an EUI48 of 7 bytes is none: RFC 3597
    ['EUI48', 108, '00005E00532A00', '\\# 7 00005e00532a00'],
  ];
  for (const [type, code, hex, text] of cases) {
    assert.deepEqual(answersOf(type, [{ type: `UNKNOWN_${code}`, name: 'example.com', data: Buffer.from(hex, 'hex') }]), [text], type);
  }
});

test('response codes: NXDOMAIN is an answer, SERVFAIL/REFUSED/FORMERR/NOTIMP are failures', () => {
  const rcodes: Array<[string, boolean]> = [['NXDOMAIN', false], ['SERVFAIL', true], ['REFUSED', true], ['FORMERR', true], ['NOTIMP', true], ['YXDOMAIN', false], ['NOERROR', false]];
  for (const [rcode, failure] of rcodes) {
    const flagsBits = dnsPacket.RECURSION_DESIRED | require('dns-packet/rcodes').toRcode(rcode);
    const r = dnsPacket.encode({ type: 'response', id: 3, flags: flagsBits, questions: [{ type: 'A', name: 'nope.example' }] });
    const rec = udpExchange(query(3, 'nope.example'), r);
    assert.equal(rec.attributes['dns.response_code'], rcode);
    assert.equal(rec.flags, failure ? FLAG_ERROR : 0, rcode);
    assert.equal(rec.attributes['error.type'], failure ? rcode : undefined);
  }
});

test('extended RCODE from OPT: BADCOOKIE (23) and BADVERS (16)', () => {
  for (const [ext, low, name] of [[1, 7, 'BADCOOKIE'], [1, 0, 'BADVERS']] as Array<[number, number, string]>) {
    const r = dnsPacket.encode({ type: 'response', id: 4, flags: low, questions: [{ type: 'A', name: 'x.example' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: ext, options: [{ code: 'COOKIE', data: Buffer.alloc(24, 2) }] }] });
    const rec = udpExchange(query(4, 'x.example'), r);
    assert.equal(rec.attributes['dns.response_code'], name);
    assert.equal(rec.flags, 0);
  }
});

test('TC=1 response is reported truncated', () => {
  const r = dnsPacket.encode({ type: 'response', id: 5, flags: dnsPacket.TRUNCATED_RESPONSE | dnsPacket.RECURSION_DESIRED, questions: [{ type: 'TXT', name: 'big.example' }] });
  const rec = udpExchange(query(5, 'big.example', 'TXT'), r);
  assert.equal(rec.attributes['telegen.dns.truncated'], true);
  assert.equal(rec.attributes['telegen.dns.flags'], 'qr tc rd');
});

test('TCP: length-prefixed messages split at every byte boundary', () => {
  const q = tcp(query(0x0a0b, 'split.example', 'AAAA'));
  const r = tcp(response(0x0a0b, 'split.example', 'AAAA', [{ type: 'AAAA', name: 'split.example', data: '2001:db8::53' }]));
  for (let cut = 1; cut < q.length; cut++) {
    for (const rcut of [1, Math.floor(r.length / 2), r.length - 1]) {
      const h = loadDecoder('dns');
      assert.equal(h.inst.feed(9, DIR_REQUEST, q.subarray(0, cut), 10n), 'ok');
      assert.equal(h.inst.feed(9, DIR_REQUEST, q.subarray(cut), 20n), 'ok');
      assert.equal(h.inst.feed(9, DIR_RESPONSE, r.subarray(0, rcut), 30n), 'ok');
      assert.equal(h.records.length, 0);
      assert.equal(h.inst.feed(9, DIR_RESPONSE, r.subarray(rcut), 40n), 'ok');
      assert.equal(h.records.length, 1, `cut ${cut}/${rcut}`);
      const rec = h.records[0];
      assert.equal(rec.tsStart, 10n, 'starts at the first byte of the query');
      assert.equal(rec.tsEnd, 40n);
      assert.equal(rec.attributes['dns.question.name'], 'split.example');
      assert.deepEqual(rec.attributes['dns.answers'], ['2001:db8::53']);
      assert.equal(h.inst.pendingBytes(), 0);
    }
  }
  // and byte by byte, both directions
  for (const [name, data] of [['q', q], ['r', r]] as Array<[string, Buffer]>) {
    const h = loadDecoder('dns');
    if (name === 'r') h.inst.feed(9, DIR_REQUEST, q, 1n);
    for (let i = 0; i < data.length; i++) assert.equal(h.inst.feed(9, name === 'q' ? DIR_REQUEST : DIR_RESPONSE, data.subarray(i, i + 1), BigInt(i + 2)), 'ok');
    if (name === 'q') h.inst.feed(9, DIR_RESPONSE, r, 1000n);
    assert.equal(h.records.length, 1);
    assert.equal(h.records[0].tsStart, name === 'q' ? 2n : 1n);
  }
});

test('TCP pipelining: several queries in one read, answered out of order in one read', () => {
  const h = loadDecoder('dns');
  const names = ['a.example', 'b.example', 'c.example'];
  h.inst.feed(4, DIR_REQUEST, Buffer.concat(names.map((n, i) => tcp(query(100 + i, n)))), 1n);
  assert.equal(h.records.length, 0);
  const order = [2, 0, 1];
  h.inst.feed(4, DIR_RESPONSE, Buffer.concat(order.map((i) => tcp(response(100 + i, names[i], 'A', [{ type: 'A', name: names[i], data: `192.0.2.${i + 1}` }])))), 2n);
  assert.deepEqual(h.records.map((r) => [r.attributes['dns.question.name'], r.attributes['dns.answers'], r.flags]), [
    ['c.example', ['192.0.2.3'], 0], ['a.example', ['192.0.2.1'], 0], ['b.example', ['192.0.2.2'], 0],
  ]);
});

test('response without its query, queries unanswered at close and after the timeout', () => {
  const h = loadDecoder('dns');
  h.inst.feed(1, DIR_RESPONSE, response(77, 'late.example', 'A', [{ type: 'A', name: 'late.example', data: '192.0.2.9' }]), 5n * MS);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_NO_REQUEST);
  assert.equal(h.records[0].attributes['dns.question.name'], 'late.example');
  assert.deepEqual(h.records[0].attributes['dns.answers'], ['192.0.2.9']);

  h.inst.feed(2, DIR_REQUEST, query(1, 'slow.example'), 1000n * MS);
  h.inst.feed(2, DIR_REQUEST, query(2, 'later.example'), 3000n * MS);
  h.inst.tick(5999n * MS);
  assert.equal(h.records.length, 1, 'not yet 5 s old');
  h.inst.tick(6000n * MS);
  assert.equal(h.records.length, 2);
  assert.equal(h.records[1].flags, FLAG_NO_RESPONSE | FLAG_TIMEOUT);
  assert.equal(h.records[1].tsEnd, 6000n * MS, 'the lookup waited until the decoder gave up');
  assert.equal(h.records[1].attributes['dns.question.name'], 'slow.example');
  assert.equal(h.records[1].attributes['dns.response_code'], undefined);
  assert.equal(h.records[1].attributes['telegen.dns.flags'], 'rd');
  h.inst.closeStream(2);
  assert.equal(h.records.length, 3);
  assert.equal(h.records[2].flags, FLAG_NO_RESPONSE);
  assert.equal(h.records[2].attributes['dns.question.name'], 'later.example');
  h.inst.closeStream(2);
  assert.equal(h.records.length, 3, 'close frees the state');
});

test('the 64-query cap: a query pushed out unanswered ends where the query that pushed it out began', () => {
  const h = loadDecoder('dns');
  for (let i = 0; i < 64; i++) h.inst.feed(1, DIR_REQUEST, query(100 + i, `q${i}.example`), 1_000n + BigInt(i));
  assert.equal(h.records.length, 0);
  h.inst.feed(1, DIR_REQUEST, query(300, 'last.example'), 9_000n);
  assert.deepEqual(h.records.map((r) => [r.attributes['dns.question.name'], r.flags, r.tsStart, r.tsEnd]),
    [['q0.example', FLAG_NO_RESPONSE, 1_000n, 9_000n]]);
});

test('matching: same id for another question is not an answer; 0x20 case differences are', () => {
  const h = loadDecoder('dns');
  h.inst.feed(1, DIR_REQUEST, query(50, 'wWw.ExAmple.com'), 1n);
  h.inst.feed(1, DIR_RESPONSE, response(50, 'other.example', 'A', []), 2n);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_NO_REQUEST);
  h.inst.feed(1, DIR_RESPONSE, response(50, 'www.example.com', 'A', []), 3n);
  assert.equal(h.records.length, 2);
  assert.equal(h.records[1].flags, 0);
  assert.equal(h.records[1].attributes['dns.question.name'], 'wWw.ExAmple.com', 'the name as the client sent it');
  assert.equal(h.records[1].tsStart, 1n);
});

test('a retransmitted query is one exchange timed from the first send', () => {
  const h = loadDecoder('dns');
  h.inst.feed(1, DIR_REQUEST, query(60, 'retry.example'), 1n * MS);
  h.inst.feed(1, DIR_REQUEST, query(60, 'retry.example'), 1001n * MS);
  h.inst.feed(1, DIR_RESPONSE, response(60, 'retry.example', 'A', []), 1002n * MS);
  h.inst.closeStream(1);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].tsStart, 1n * MS);
});

test('pending queries per stream are capped: the oldest end unanswered', () => {
  const h = loadDecoder('dns');
  for (let i = 0; i < 100; i++) h.inst.feed(1, DIR_REQUEST, query(i, `q${i}.example`), BigInt(i));
  assert.equal(h.records.length, 36);
  assert.ok(h.records.every((r) => r.flags === FLAG_NO_RESPONSE));
  assert.equal(h.records[0].attributes['dns.question.name'], 'q0.example');
  h.inst.closeStream(1);
  assert.equal(h.records.length, 100);
});

/** Builds a response by hand: header + raw body, so compression and damage can be placed. */
function rawResponse(id: number, counts: [number, number, number, number], body: number[], flags = 0x8180): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  counts.forEach((c, i) => h.writeUInt16BE(c, 4 + i * 2));
  return Buffer.concat([h, Buffer.from(body)]);
}
const label = (s: string) => [s.length, ...Buffer.from(s)];
const QNAME = [...label('www'), ...label('example'), ...label('com'), 0]; // at offset 12
const QTAIL = [0, 1, 0, 1];
const rr = (name: number[], type: number, rdata: number[]) => [...name, type >> 8, type & 255, 0, 1, 0, 0, 0, 60, rdata.length >> 8, rdata.length & 255, ...rdata];

test('name compression: pointers to the question and to suffixes', () => {
  // answer 1: owner -> question (0xc00c), CNAME rdata "cdn" + pointer to "example.com" (offset 16)
  const cnameRdata = [...label('cdn'), 0xc0, 16];
  const a1 = rr([0xc0, 12], 5, cnameRdata);
  const a1Off = 12 + QNAME.length + 4;
  const cnameTargetOff = a1Off + 2 + 10; // where the CNAME rdata (a name) starts
  const a2 = rr([0xc0, cnameTargetOff], 1, [192, 0, 2, 80]);
  const r = rawResponse(11, [1, 2, 0, 0], [...QNAME, ...QTAIL, ...a1, ...a2]);
  const rec = udpExchange(query(11, 'www.example.com'), r);
  assert.deepEqual(rec.attributes['dns.answers'], ['cdn.example.com', '192.0.2.80']);
  assert.equal(rec.flags, 0);
  // dns-packet agrees
  assert.deepEqual(dnsPacket.decode(r).answers.map((a: any) => a.data), ['cdn.example.com', '192.0.2.80']);
});

test('hostile names: loops, forward pointers, long labels, long names, cut records never trap', () => {
  const cases: Array<[string, Buffer]> = [
    ['pointer to itself', rawResponse(1, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12 + QNAME.length + 4], 5, [0xc0, 12])])],
    ['rdata pointer loop', (() => {
      const off = 12 + QNAME.length + 4 + 2 + 10;
      return rawResponse(1, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 5, [...label('a'), 0xc0, off])]);
    })()],
    ['forward pointer', rawResponse(1, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 5, [0xc0, 0xff])])],
    ['mutual pointers', (() => {
      const off = 12 + QNAME.length + 4 + 2 + 10;
      return rawResponse(1, [1, 2, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 5, [0xc0, off + 2 + 2 + 10]), ...rr([0xc0, 12], 5, [0xc0, off])]);
    })()],
    ['label type 0x40', rawResponse(1, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 5, [0x41, 1, 0])])],
    ['label over 63', rawResponse(1, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 5, [64, ...Buffer.alloc(64, 97), 0])])],
    ['name over 255', rawResponse(1, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 5, [...Array(5).fill(0).flatMap(() => [63, ...Buffer.alloc(63, 98)]), 0])])],
    ['rdata past the end', rawResponse(1, [1, 1, 0, 0], [...QNAME, ...QTAIL, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 200, 1, 2])],
    ['counts beyond the bytes', rawResponse(1, [1, 9, 9, 9], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 1, [1, 2, 3, 4])])],
    ['A with 3 bytes', rawResponse(1, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 1, [1, 2, 3])])],
    ['TXT string overruns rdata', rawResponse(1, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 16, [5, 97, 98])])],
  ];
  for (const [what, r] of cases) {
    const h = loadDecoder('dns');
    udpExchange(query(1, 'www.example.com'), r, h);
    assert.equal(h.inst.counters.traps, 0, what);
    const rec = h.records[0];
    assert.equal(rec.attributes['dns.question.name'], 'www.example.com', what);
    const answers = (rec.attributes['dns.answers'] as string[] | undefined) ?? [];
    for (const a of answers) assert.match(a, /^(\\# \d+( [0-9a-f]+)?|1\.2\.3\.4)$/, `${what}: malformed rdata is shown raw, not guessed`);
  }
  // cut sections are flagged as not fully known
  const h = loadDecoder('dns');
  udpExchange(query(1, 'www.example.com'), cases[8][1], h);
  assert.equal(h.records[0].flags, FLAG_UNKNOWN);
  assert.deepEqual(h.records[0].attributes['dns.answers'], ['1.2.3.4']);
});

test('a compressed question name that loops: the message still yields an exchange, no trap', () => {
  const h = loadDecoder('dns');
  const r = rawResponse(2, [1, 0, 0, 0], [0xc0, 12, 0, 1, 0, 1]);
  h.inst.feed(1, DIR_REQUEST, query(2, 'x.example'), 1n);
  h.inst.feed(1, DIR_RESPONSE, r, 2n);
  assert.equal(h.inst.counters.traps, 0);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_UNKNOWN, 'id matched, question unknown');
  assert.equal(h.records[0].attributes['dns.question.name'], 'x.example');
});

test('presentation escapes in names (semantic conventions: a space is printable); the root name is "."', () => {
  const name = [3, 0x61, 0x2e, 0x62, 2, 0x20, 0xff, 7, 0x22, 0x5c, 0x09, 0x0a, 0x0d, 0x00, 0x7f, 0];
  const r = rawResponse(3, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 12, name)]);
  const rec = udpExchange(query(3, 'www.example.com'), r);
  assert.deepEqual(rec.attributes['dns.answers'], ['a\\.b. \\255.\\"\\\\\\t\\n\\r\\000\\127']);
  // a DNS-SD instance name: spaces as they are, on the fast path (no other escape in the name)
  const sd = [14, ...Buffer.from('Office Printer'), 4, ...Buffer.from('_ipp'), 4, ...Buffer.from('_tcp'), 5, ...Buffer.from('local'), 0];
  const r2 = rawResponse(5, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 12, sd)]);
  assert.deepEqual(udpExchange(query(5, 'www.example.com'), r2).attributes['dns.answers'], ['Office Printer._ipp._tcp.local']);
  const root = udpExchange(query(4, '.', 'NS'), response(4, '.', 'NS', [{ type: 'NS', name: '.', data: 'a.root-servers.net' }]));
  assert.equal(root.attributes['dns.question.name'], '.');
  assert.equal(root.attributes['dns.question.type'], 'NS');
});

test('unknown types are TYPEnnn with RFC 3597 data', () => {
  const rec = udpExchange(query(8, 'example.net', 'UNKNOWN_65534'), response(8, 'example.net', 'UNKNOWN_65534', [{ type: 'UNKNOWN_65534', name: 'example.net', data: Buffer.from([7, 0x7d, 0x12, 0, 1]) }]));
  assert.equal(rec.attributes['dns.question.type'], 'TYPE65534');
  assert.deepEqual(rec.attributes['dns.answers'], ['\\# 5 077d120001']);
});

test('mDNS-style response without a question is reported, not matched', () => {
  const r = dnsPacket.encode({ type: 'response', id: 0, flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: [{ type: 'A', name: 'printer.local', ttl: 120, data: '192.168.1.20' }] });
  const h = loadDecoder('dns');
  h.inst.feed(1, DIR_RESPONSE, r, 1n);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_NO_REQUEST);
  assert.equal(h.records[0].attributes['dns.question.name'], undefined);
  assert.deepEqual(h.records[0].attributes['dns.answers'], ['192.168.1.20']);
});

test('detect: DNS over UDP and TCP yes, HTTP and TLS no', () => {
  const h = loadDecoder('dns');
  assert.ok(h.inst.detect(DIR_REQUEST, query(1, 'example.com')) >= 80);
  assert.ok(h.inst.detect(DIR_REQUEST, tcp(query(1, 'example.com'))) >= 80);
  assert.equal(h.inst.detect(DIR_REQUEST, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 0);
  assert.equal(h.inst.detect(DIR_REQUEST, Buffer.from('1603010200010001fc0303a1b2c3d4e5f60718', 'hex')), 0);
});

test('not DNS: the stream is refused', () => {
  const h = loadDecoder('dns');
  assert.equal(h.inst.feed(1, DIR_REQUEST, Buffer.from('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n'), 1n), 'invalid');
  assert.equal(h.records.length, 0);
});

test('TCP: a frame shorter than a header loses the framing', () => {
  const h = loadDecoder('dns');
  h.inst.feed(1, DIR_REQUEST, tcp(query(1, 'a.example')), 1n);
  assert.equal(h.inst.feed(1, DIR_REQUEST, Buffer.from([0, 3, 1, 2, 3]), 2n), 'invalid');
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, FLAG_NO_RESPONSE, 'the reset flushes what was pending');
});

test('fuzz: random and mutated messages on UDP and TCP never trap and memory stays bounded', () => {
  const h = loadDecoder('dns');
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const seeds = [
    response(1, 'www.example.com', 'A', [{ type: 'A', name: 'www.example.com', data: '192.0.2.1' }, { type: 'CNAME', name: 'www.example.com', data: 'x.example.com' }]),
    response(2, 'example.com', 'MX', [{ type: 'MX', name: 'example.com', data: { preference: 1, exchange: 'mx.example.com' } }], { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, options: [{ code: 'COOKIE', data: Buffer.alloc(8) }] }] }),
    rawResponse(3, [1, 2, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 5, [...label('cdn'), 0xc0, 16]), ...rr([0xc0, 12], 65, [...svcbRdata(1, '.', [[1, Buffer.from([2, 104, 50])], [4, Buffer.from([1, 2, 3, 4])]])])]),
    query(4, 'fuzz.example'),
  ];
  const memBefore = h.inst.memoryBytes();
  for (let i = 0; i < 20000; i++) {
    const base = Buffer.from(seeds[rnd() % seeds.length]);
    const mode = rnd() % 3;
    let buf: Buffer;
    if (mode === 0) buf = Buffer.from(Array.from({ length: rnd() % 80 }, () => rnd() & 255));
    else {
      buf = base;
      const flips = 1 + (rnd() % 6);
      for (let f = 0; f < flips; f++) buf[rnd() % buf.length] = rnd() & 255;
      if (rnd() % 4 === 0) buf = buf.subarray(0, rnd() % buf.length);
    }
    const stream = 1 + (i % 50);
    const data = i % 2 ? tcp(buf) : buf;
    h.inst.feed(stream, rnd() % 2, data, BigInt(i) * MS);
    if (i % 97 === 0) h.inst.closeStream(stream);
    if (i % 1000 === 0) h.inst.tick(BigInt(i) * MS);
  }
  for (let s = 1; s <= 50; s++) h.inst.closeStream(s);
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  assert.equal(h.inst.counters.badRecords, 0);
  assert.ok(h.inst.memoryBytes() - memBefore <= 4 * 1024 * 1024, `memory grew by ${h.inst.memoryBytes() - memBefore}`);
});

test('opcodes other than QUERY are named (NOTIFY, UPDATE)', () => {
  for (const [opcode, name] of [[4, 'NOTIFY'], [5, 'UPDATE'], [2, 'STATUS']] as Array<[number, string]>) {
    const h = loadDecoder('dns');
    const q = query(1, 'zone.example', 'SOA');
    q.writeUInt16BE(opcode << 11, 2);
    const r = Buffer.from(response(1, 'zone.example', 'SOA', []));
    r.writeUInt16BE(0x8000 | (opcode << 11) | 0x0400, 2);
    udpExchange(q, r, h);
    assert.equal(h.records[0].attributes['telegen.dns.opcode'], name);
    assert.equal(h.records[0].attributes['telegen.dns.flags'], 'qr aa');
  }
});

test('gap: a lost datagram costs nothing; lost TCP bytes reset the stream', () => {
  const h = loadDecoder('dns');
  h.inst.feed(1, DIR_REQUEST, query(1, 'u.example'), 1n);
  assert.equal(h.inst.gap(1, DIR_RESPONSE, 100), 'ok');
  h.inst.feed(1, DIR_RESPONSE, response(1, 'u.example', 'A', []), 2n);
  assert.equal(h.records.length, 1);
  assert.equal(h.records[0].flags, 0);
  h.inst.feed(2, DIR_REQUEST, tcp(query(2, 't.example')), 3n);
  assert.equal(h.inst.gap(2, DIR_RESPONSE, 10), 'invalid');
  assert.equal(h.records.length, 2);
  assert.equal(h.records[1].flags, FLAG_NO_RESPONSE);
  assert.equal(h.records[1].attributes['dns.question.name'], 't.example');
});

test('fuzz: TCP byte streams of valid and damaged frames in random chunks never trap', () => {
  let seed = 777;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const good = [
    tcp(query(1, 'a.example')),
    tcp(response(1, 'a.example', 'A', [{ type: 'A', name: 'a.example', data: '192.0.2.1' }])),
    tcp(rawResponse(2, [1, 1, 0, 0], [...QNAME, ...QTAIL, ...rr([0xc0, 12], 5, [...label('x'), 0xc0, 16])])),
  ];
  for (let round = 0; round < 300; round++) {
    const h = loadDecoder('dns');
    const parts: Buffer[] = [];
    for (let i = 0; i < 8; i++) {
      const b = Buffer.from(good[rnd() % good.length]);
      if (rnd() % 3 === 0) b[2 + (rnd() % (b.length - 2))] = rnd() & 255; // damage inside the frame only
      parts.push(b);
    }
    const all = Buffer.concat(parts);
    let off = 0;
    while (off < all.length) {
      const n = 1 + (rnd() % 40);
      h.inst.feed(1, rnd() % 2, all.subarray(off, off + n), BigInt(off));
      off += n;
    }
    h.inst.tick(10n ** 12n);
    h.inst.closeStream(1);
    assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
    assert.equal(h.inst.counters.badRecords, 0);
  }
});

test('decoder-wide budgets: pending queries capped at 16384, streams swept when 65536 are open', () => {
  const h = loadDecoder('dns');
  for (let s = 0; s < 300; s++) for (let i = 0; i < 64; i++) h.inst.feed(10 + s, DIR_REQUEST, query(i, `p${i}.s${s}.example`), 1n);
  assert.equal(h.records.length, 0);
  assert.ok(h.logs.some((l) => /pending query budget/.test(l)));
  for (let s = 0; s < 300; s++) h.inst.closeStream(10 + s);
  assert.equal(h.records.length, 16384, 'every tracked query ends as NO_RESPONSE; the rest were never tracked');
  assert.ok(h.records.every((r) => r.flags === FLAG_NO_RESPONSE));

  const g = loadDecoder('dns');
  const q = query(5, 'many.example');
  const r = response(5, 'many.example', 'A', [{ type: 'A', name: 'many.example', data: '192.0.2.5' }]);
  for (let s = 1; s <= 70000; s++) {
    assert.equal(g.inst.feed(s, DIR_REQUEST, q, 1n), 'ok');
    assert.equal(g.inst.feed(s, DIR_RESPONSE, r, 2n), 'ok');
  }
  assert.equal(g.records.length, 70000);
  assert.equal(g.inst.counters.invalid, 0, 'answered streams are swept to make room');
  assert.ok(g.inst.memoryBytes() <= 32 * 1024 * 1024);
});
