// Writes NAME.expected-calls.tsv beside NAME.pcap: tshark's decoding (-T json) reduced to one row
// per call: every HTTP/2 stream, with an h2c upgrade request as stream 1 (the HTTP/1.1 request
// answered 101, RFC 7540 §3.2), and every HTTP/1.1 exchange that was not upgraded (stream "-").
// gRPC messages are counted where tshark reassembled them; a packet holding DATA of two streams
// would make that ambiguous and stops the script. Usage: node calls.js PCAP PORT DECODE_AS
'use strict';
const fs = require('fs');
const { execFileSync } = require('child_process');

const [pcap, port, as] = process.argv.slice(2);
const frames = JSON.parse(execFileSync('tshark', ['-r', pcap, '-d', `tcp.port==${port},${as}`, '-T', 'json', '--no-duplicate-keys', '-J', 'tcp http http2 grpc'], { maxBuffer: 1 << 30 }));
const arr = (x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
/** First value of `key` anywhere inside a dissector tree. */
function find(o, key) {
  if (o === null || typeof o !== 'object') return undefined;
  if (key in o) return arr(o[key])[0];
  for (const v of Object.values(o)) { const r = find(v, key); if (r !== undefined) return r; }
  return undefined;
}

const calls = new Map();
const pending = new Map(); // tcp.stream -> HTTP/1.1 request waiting for its response
function call(tcpStream, clientPort, sid) {
  const k = `${tcpStream}/${sid}`;
  if (!calls.has(k)) calls.set(k, { tcpStream, clientPort, sid, h2c: 0, method: '', path: '', status: '', grpcStatus: '', grpcMessage: '', reqMsgs: 0, respMsgs: 0 });
  return calls.get(k);
}

for (const f of frames) {
  const L = f._source.layers;
  const tcpStream = Number(L.tcp['tcp.stream']);
  const fromClient = Number(L.tcp['tcp.dstport']) === Number(port);
  const clientPort = Number(fromClient ? L.tcp['tcp.srcport'] : L.tcp['tcp.dstport']);
  for (const h of arr(L.http)) {
    const method = find(h, 'http.request.method');
    if (method !== undefined) { pending.set(tcpStream, { method, uri: find(h, 'http.request.uri'), upgrade: find(h, 'http.upgrade') }); continue; }
    const code = find(h, 'http.response.code');
    const req = pending.get(tcpStream);
    if (code === undefined || !req || (code.startsWith('1') && code !== '101')) continue;
    pending.delete(tcpStream);
    const h2c = code === '101' && String(req.upgrade).toLowerCase() === 'h2c';
    const c = call(tcpStream, clientPort, h2c ? '1' : '-');
    Object.assign(c, { method: req.method, path: req.uri, h2c: h2c ? 1 : 0 });
    if (!h2c) c.status = code;
  }
  const dataSids = new Set();
  for (const h of arr(L.http2)) for (const s of arr(h['http2.stream'])) {
    const sid = s['http2.streamid'];
    if (s['http2.type'] === '0') dataSids.add(sid);
    // HEADERS, or PUSH_PROMISE: the server sends the request of the promised stream itself
    if (s['http2.type'] !== '1' && s['http2.type'] !== '5') continue;
    const c = call(tcpStream, clientPort, s['http2.type'] === '5' ? s['http2.push_promise.promised_stream_id'] : sid);
    for (const fld of arr(s['http2.header'])) {
      const n = fld['http2.header.name'], v = fld['http2.header.value'];
      if (n === ':method') c.method = v;
      else if (n === ':path') c.path = v;
      else if (n === ':status' && !v.startsWith('1')) c.status = v;
      else if (n === 'grpc-status') c.grpcStatus = v;
      else if (n === 'grpc-message') c.grpcMessage = v;
    }
  }
  const msgs = arr(L.grpc).filter((g) => g['grpc.message_length'] !== undefined).length;
  if (msgs > 0) {
    if (dataSids.size !== 1) throw new Error(`frame ${find(L, 'frame.number') ?? '?'}: gRPC messages with DATA of streams ${[...dataSids]}`);
    const c = call(tcpStream, clientPort, [...dataSids][0]);
    if (fromClient) c.reqMsgs += msgs; else c.respMsgs += msgs;
  }
}

const cols = ['tcp.stream', 'client.port', 'stream', 'h2c', 'method', 'path', 'status', 'grpc.status', 'grpc.message', 'grpc.request.messages', 'grpc.response.messages'];
const rows = [...calls.values()].filter((c) => c.sid !== '0')
  .map((c) => [c.tcpStream, c.clientPort, c.sid, c.h2c, c.method, c.path, c.status, c.grpcStatus, c.grpcMessage, c.reqMsgs, c.respMsgs].join('\t'));
const out = pcap.replace(/\.pcap(ng)?$/, '.expected-calls.tsv');
fs.writeFileSync(out, [cols.join('\t'), ...rows].join('\n') + '\n');
console.log(`${out}: ${rows.length} calls`);
