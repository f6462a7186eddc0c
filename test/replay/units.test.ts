// Small pure pieces: address text, port heuristics, sequence arithmetic, header sniffing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addrText } from '../../host/src/replay/decode';
import { classify } from '../../host/src/replay/files';
import { serverByPorts } from '../../host/src/replay/ports';
import { rel } from '../../host/src/replay/tcp';

test('IPv6 text is RFC 5952 (same as Node\'s URL/net formatting)', () => {
  const v6 = (hex: string) => addrText(Buffer.from(hex, 'hex'), 0, true);
  assert.equal(v6('00000000000000000000000000000001'), '::1');
  assert.equal(v6('00000000000000000000000000000000'), '::');
  assert.equal(v6('20010db8000000010000000000000001'), '2001:db8:0:1::1');
  assert.equal(v6('20010db8000000000001000000000001'), '2001:db8::1:0:0:1'); // first of two equal runs
  assert.equal(v6('20010db8000100010001000100010001'), '2001:db8:1:1:1:1:1:1');
  assert.equal(v6('20010db800000001000100010001abcd'), '2001:db8:0:1:1:1:1:abcd'); // one zero group stays
  assert.equal(v6('fe800000000000000000000000000000'), 'fe80::');
  assert.equal(v6('00000000000000000000ffffc0000201'), '::ffff:192.0.2.1');
  assert.equal(addrText(Buffer.from([192, 0, 2, 255]), 0, false), '192.0.2.255');
});

test('server by ports: well-known list, then privileged, then (TCP only) the smaller port', () => {
  assert.equal(serverByPorts(53, 33000, false), 1);
  assert.equal(serverByPorts(33000, 5432, false), -1);
  assert.equal(serverByPorts(1023, 2000, false), 1);
  assert.equal(serverByPorts(9092, 80, false), -1); // both well known: 80 < 1024 decides
  assert.equal(serverByPorts(40000, 50000, false), 0);
  assert.equal(serverByPorts(40000, 50000, true), 1);
  assert.equal(serverByPorts(5353, 5353, true), 0);
});

test('sequence distance is signed modulo 2^32', () => {
  assert.equal(rel(5, 0xfffffffb), 10);
  assert.equal(rel(0xfffffffb, 5), -10);
  assert.equal(rel(0x80000000, 0), -0x80000000);
  assert.equal(rel(100, 100), 0);
});

test('header sniffing names what is wrong', () => {
  assert.equal(classify(Buffer.from('d4c3b2a102000400000000000000000000000400e4000000', 'hex'), 'f').kind, 'pcap');
  const s = classify(Buffer.from('a1b23c4d00020004000000000000000000040000000000e4', 'hex'), 'f');
  assert.deepEqual(s, { kind: 'pcap', le: false, nsec: true, linkType: 228, snaplen: 262144 });
  assert.throws(() => classify(Buffer.from('d4c3b2a103000400000000000000000000000400e4000000', 'hex'), 'f'), /unsupported pcap version 3/);
  assert.throws(() => classify(Buffer.from('34cdb2a1', 'hex'), 'f'), /Kuznetzov/);
});
