// Multicast DNS (RFC 6762) and unsolicited answers on 127.0.0.1 / 127.0.0.2, port 5353 (tshark
// decodes it as mdns): a querier asks with id 0 (as mDNS does) and QU, the responder first sends
// an announcement of another service (id 0, QR=1, AA, no question) and then its answer (id 0,
// no question, as RFC 6762 section 6 requires of multicast responses), then a goodbye (TTL 0).
// Then, on port 15356, a unicast response nobody asked for (an id no query had).
const dgram = require('dgram');
const packet = require('dns-packet');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const bind = (addr, port) => new Promise((r) => { const s = dgram.createSocket({ type: 'udp4', reuseAddr: true }); s.on('error', () => {}); s.bind(port, addr, () => r(s)); });
(async () => {
  const responder = await bind('127.0.0.1', 5353);
  const querier = await bind('127.0.0.2', 5353);
  const send = (s, m, addr, port = 5353) => new Promise((r) => s.send(packet.encode(m), port, addr, r));
  const ptr = (name, data, ttl = 4500) => ({ type: 'PTR', class: 'IN', name, ttl, data });
  await send(querier, { id: 0, type: 'query', flags: 0, questions: [{ type: 'PTR', class: 'IN', name: '_http._tcp.local' }] }, '127.0.0.1');
  await sleep(20);
  await send(responder, { id: 0, type: 'response', flags: packet.AUTHORITATIVE_ANSWER, answers: [ptr('_ipp._tcp.local', 'printer._ipp._tcp.local')] }, '127.0.0.2');
  await sleep(20);
  await send(responder, { id: 0, type: 'response', flags: packet.AUTHORITATIVE_ANSWER, answers: [ptr('_http._tcp.local', 'web._http._tcp.local')] }, '127.0.0.2');
  await sleep(20);
  await send(responder, { id: 0, type: 'response', flags: packet.AUTHORITATIVE_ANSWER, answers: [ptr('_ipp._tcp.local', 'printer._ipp._tcp.local', 0)] }, '127.0.0.2');
  await sleep(20);
  // a unicast response without a query
  const stray = await bind('127.0.0.1', 15356);
  await send(stray, { id: 0x4242, type: 'response', flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE, questions: [{ type: 'A', class: 'IN', name: 'stray.example.test' }], answers: [{ type: 'A', class: 'IN', name: 'stray.example.test', ttl: 60, data: '10.9.9.9' }] }, '127.0.0.2', 15357);
  await sleep(50);
  responder.close(); querier.close(); stray.close();
})();
