// A DNS server on 127.0.0.1 that answers with hand-built messages (UDP and TCP) for edge cases
// real servers rarely produce: pointers to pointers, several questions, qdcount 0, AXFR in several
// messages, odd label bytes, extended rcodes, rcodes of every kind.
const dgram = require('dgram');
const net = require('net');
const port = Number(process.argv[2]);

const u16 = (n) => Buffer.from([n >> 8, n & 255]);
const u32 = (n) => Buffer.from([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const label = (l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]);
const name = (n) => Buffer.concat([...n.split('.').filter(Boolean).map(label), Buffer.from([0])]);
const rr = (owner, type, ttl, rdata) => Buffer.concat([owner, u16(type), u16(1), u32(ttl), u16(rdata.length), rdata]);
const ip4 = (s) => Buffer.from(s.split('.').map(Number));

function parseQ(q) {
  const id = q.readUInt16BE(0);
  const flags = q.readUInt16BE(2);
  let p = 12;
  const labels = [];
  while (q[p] !== 0) { labels.push(q.subarray(p + 1, p + 1 + q[p]).toString('latin1')); p += q[p] + 1; }
  p++;
  const qtype = q.readUInt16BE(p);
  return { id, flags, qnameWire: q.subarray(12, p), qname: labels.join('.').toLowerCase(), qtype, question: q.subarray(12, p + 4), qdcount: q.readUInt16BE(4), all: q };
}

function header(id, flags, qd, an, ns, ar) {
  return Buffer.concat([u16(id), u16(flags), u16(qd), u16(an), u16(ns), u16(ar)]);
}

/** Returns a list of response messages for query q. */
function answer(q) {
  const rd = q.flags & 0x0100;
  const ok = 0x8400 | rd; // qr aa
  const Q = q.question;
  const QN = Buffer.from([0xc0, 0x0c]);
  switch (q.qname) {
    case 'ptrptr.weird.test': {
      // answer 1 owner: a bare pointer at offset 12+Q.length; answer 2 owner: a pointer to that pointer
      const a1off = 12 + Q.length;
      const a1 = rr(QN, 5, 60, Buffer.concat([label('x'), QN]));
      const a2 = rr(Buffer.from([0xc0, a1off]), 1, 60, ip4('10.9.9.1'));
      // answer 3: a CNAME whose rdata is a pointer to answer 1's rdata (label + pointer): chain of pointers
      const a1rdata = a1off + 2 + 10;
      const a3 = rr(QN, 5, 60, Buffer.from([0xc0, a1rdata]));
      return [Buffer.concat([header(q.id, ok, 1, 3, 0, 0), Q, a1, a2, a3])];
    }
    case 'multiq.weird.test': {
      // echo every question, one A answer per question, each owner a pointer to its question
      const qs = [];
      let p = 12;
      const offs = [];
      for (let i = 0; i < q.qdcount; i++) {
        offs.push(p);
        let s = p;
        while (q.all[s] !== 0) s += q.all[s] + 1;
        s += 5;
        qs.push(q.all.subarray(p, s));
        p = s;
      }
      const ans = offs.map((o, i) => rr(Buffer.from([0xc0, o]), 1, 30, ip4(`10.9.8.${i + 1}`)));
      return [Buffer.concat([header(q.id, ok, q.qdcount, ans.length, 0, 0), ...qs, ...ans])];
    }
    case 'noq.weird.test':
      return [header(q.id, 0x8000 | rd | 1, 0, 0, 0, 0)]; // FORMERR without the question
    case 'notimp.weird.test':
      return [Buffer.concat([header(q.id, 0x8000 | rd | 4, 1, 0, 0, 0), Q])];
    case 'servfail.weird.test':
      return [Buffer.concat([header(q.id, 0x8000 | rd | 2, 1, 0, 0, 0), Q])];
    case 'yxdomain.weird.test':
      return [Buffer.concat([header(q.id, 0x8000 | rd | 6, 1, 0, 0, 0), Q])];
    case 'badvers.weird.test': {
      // RCODE 16 (BADVERS): low 4 bits 0 in the header, 1 in the OPT TTL's upper byte
      const opt = Buffer.concat([Buffer.from([0]), u16(41), u16(1232), Buffer.from([1, 0, 0, 0]), u16(0)]);
      return [Buffer.concat([header(q.id, 0x8000 | rd, 1, 0, 0, 1), Q, opt])];
    }
    case 'odd.weird.test': {
      // answers naming labels with a dot, a space, a backslash, a NUL, high bytes, uppercase
      const odd = Buffer.concat([label('Office Printer'), label('sp ace'), label('_ipp'), label('UPPER'), QN]);
      const a1 = rr(QN, 5, 60, odd);
      const oddOff = 12 + Q.length + 12;
      const a2 = rr(Buffer.from([0xc0 | (oddOff >> 8), oddOff & 255]), 1, 60, ip4('10.9.9.2'));
      return [Buffer.concat([header(q.id, ok, 1, 2, 0, 0), Q, a1, a2])];
    }
    case 'long.weird.test': {
      // a 63-octet label and a name of 253 characters (pointer-compressed), 40 A records
      const l63 = 'l'.repeat(63);
      const target = Buffer.concat([label(l63), label(l63), label(l63), label('m'.repeat(41)), QN]);
      const a1 = rr(QN, 5, 60, target);
      const tOff = 12 + Q.length + 12;
      const as = [];
      for (let i = 0; i < 40; i++) as.push(rr(Buffer.from([0xc0 | (tOff >> 8), tOff & 255]), 1, 60, ip4(`10.7.0.${i}`)));
      return [Buffer.concat([header(q.id, ok, 1, 41, 0, 0), Q, a1, ...as])];
    }
    case 'soa-ns.weird.test': {
      // NODATA with SOA in authority, NS + glue in additional, mixed-case owner names
      const soa = Buffer.concat([name('ns1.weird.test'), name('hostmaster.weird.test'), u32(2024010101), u32(7200), u32(3600), u32(1209600), u32(300)]);
      const auth = rr(name('WEIRD.test'), 6, 300, soa);
      const ns = rr(name('weird.test'), 2, 300, name('ns1.weird.test'));
      const glue = rr(name('ns1.weird.test'), 1, 300, ip4('10.9.9.53'));
      return [Buffer.concat([header(q.id, ok, 1, 0, 2, 1), Q, auth, ns, glue])];
    }
    case 'cut.weird.test': {
      // counts promise 3 answers, only 1 present (a datagram cut short) with TC set
      const a1 = rr(QN, 1, 60, ip4('10.9.9.3'));
      return [Buffer.concat([header(q.id, ok | 0x0200, 1, 3, 0, 0), Q, a1])];
    }
    case 'txt.weird.test': {
      // TXT with several strings, an empty string, quotes, backslash, a semicolon and a control byte
      const strs = ['first', '', 'with "quotes"', 'semi;colon', 'back\\slash', 'k=v; a=b'];
      const rdata = Buffer.concat(strs.map(label));
      const two = rr(QN, 16, 60, Buffer.concat([label('second'), label('rr')]));
      return [Buffer.concat([header(q.id, ok, 1, 2, 0, 0), Q, rr(QN, 16, 60, rdata), two])];
    }
    case 'mxsrv.weird.test': {
      const mx = rr(QN, 15, 60, Buffer.concat([u16(10), label('mx'), QN]));
      const mxOff = 12 + Q.length + 12 + 2;
      const mx2 = rr(QN, 15, 60, Buffer.concat([u16(20), Buffer.from([0xc0 | (mxOff >> 8), mxOff & 255])]));
      const srv = rr(QN, 33, 60, Buffer.concat([u16(1), u16(2), u16(443), name('srv.target.test')]));
      const ptr = rr(QN, 12, 60, Buffer.concat([label('ptr'), QN]));
      const ns = rr(QN, 2, 60, Buffer.concat([label('ns'), QN]));
      const dname = rr(QN, 39, 60, name('dname.target.test'));
      return [Buffer.concat([header(q.id, ok, 1, 6, 0, 0), Q, mx, mx2, srv, ptr, ns, dname])];
    }
    case 'weird.test': {
      if (q.qtype === 252) {
        // AXFR: SOA, records, SOA, over three messages with the same id (RFC 5936)
        const soa = rr(QN, 6, 300, Buffer.concat([name('ns1.weird.test'), name('hostmaster.weird.test'), u32(1), u32(2), u32(3), u32(4), u32(5)]));
        const m1 = Buffer.concat([header(q.id, 0x8400, 1, 2, 0, 0), Q, soa, rr(QN, 2, 300, name('ns1.weird.test'))]);
        const m2 = Buffer.concat([header(q.id, 0x8400, 0, 2, 0, 0), rr(name('a.weird.test'), 1, 300, ip4('10.9.1.1')), rr(name('b.weird.test'), 28, 300, Buffer.from('20010db8000000000000000000000001', 'hex'))]);
        const soa0 = rr(name('weird.test'), 6, 300, Buffer.concat([name('ns1.weird.test'), name('hostmaster.weird.test'), u32(1), u32(2), u32(3), u32(4), u32(5)]));
        const m3 = Buffer.concat([header(q.id, 0x8400, 0, 1, 0, 0), soa0]);
        return [m1, m2, m3];
      }
      return [Buffer.concat([header(q.id, ok, 1, 1, 0, 0), Q, rr(QN, 1, 60, ip4('10.9.0.1'))])];
    }
    default:
      return [Buffer.concat([header(q.id, 0x8000 | rd | 3, 1, 0, 0, 0), Q])]; // NXDOMAIN
  }
}

function handle(buf) {
  const q = parseQ(buf);
  // responses (an mDNS announcement) and mDNS-style queries (id 0, no RD) get no answer
  if ((q.flags & 0x8000) !== 0 || (q.id === 0 && q.flags === 0)) return [];
  if ((q.flags >> 11 & 15) === 4) return [Buffer.concat([header(q.id, 0xa400, 1, 0, 0, 0), q.question])]; // NOTIFY ack
  if ((q.flags >> 11 & 15) === 5) return [Buffer.concat([header(q.id, 0xa800 | 5, 1, 0, 0, 0), q.question])]; // UPDATE refused
  return answer(q);
}

const udp = dgram.createSocket('udp4');
udp.on('message', (m, r) => { for (const out of handle(m)) udp.send(out, r.port, r.address); });
udp.bind(port, '127.0.0.1');
const srv = net.createServer((s) => {
  s.setNoDelay(true);
  let acc = Buffer.alloc(0);
  s.on('data', async (d) => {
    acc = Buffer.concat([acc, d]);
    const outs = [];
    while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
      const n = acc.readUInt16BE(0);
      const m = acc.subarray(2, 2 + n);
      acc = acc.subarray(2 + n);
      for (const out of handle(m)) outs.push(Buffer.concat([u16(out.length), out]));
    }
    if (outs.length === 0) return;
    const all = Buffer.concat(outs);
    const slow = all.length > 2 && outs.length === 1 && parseQ(outs[0].subarray(2)).qname === 'split.weird.test';
    if (slow) {
      // length prefix alone, then the message in 5-byte pieces
      for (let i = 0; i < all.length; i += i === 0 ? 2 : 5) {
        s.write(all.subarray(i, i === 0 ? 2 : i + 5));
        await new Promise((r) => setTimeout(r, 15));
      }
    } else {
      s.write(all); // several responses in one segment
    }
  });
  s.on('error', () => undefined);
});
srv.listen(port, '127.0.0.1', () => console.log('ready'));
