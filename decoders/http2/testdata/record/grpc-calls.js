// Records grpc-calls.pcap: one @grpc/grpc-js 1.14 server and client on 127.0.0.1, one call of
// each shape the http2 decoder must name and count: unary with request metadata (text and -bin),
// response headers and trailing metadata; server streaming (5); client streaming (4); bidi (3/3);
// a status error with a percent-encoded message after response headers were sent; a Trailers-Only
// error (no message, status in the only HEADERS block); UNIMPLEMENTED for a method the server does
// not have; a 40 KB response and a 20 KB request spread over many DATA frames.
// Usage: node grpc-calls.js PORT
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const port = Number(process.argv[2] || 50052);
const def = loader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true });
const Echo = grpc.loadPackageDefinition(def).telegen.test.Echo;

const server = new grpc.Server();
server.addService(Echo.service, {
  Unary: (call, cb) => {
    const md = new grpc.Metadata();
    md.set('x-served-by', 'echo-1');
    call.sendMetadata(md);
    const trailer = new grpc.Metadata();
    trailer.set('x-cost', '3');
    trailer.set('x-trace-bin', Buffer.from([1, 2, 3]));
    const size = call.request.n > 1000 ? call.request.n : 0;
    cb(null, { text: 'echo:' + call.request.text, blob: Buffer.alloc(size, 9), n: (call.request.blob || []).length }, trailer);
  },
  ClientStream: (call, cb) => { let n = 0; call.on('data', (m) => { n += m.n; }); call.on('end', () => cb(null, { text: 'sum', n })); },
  ServerStream: (call) => { for (let i = 0; i < call.request.n; i++) call.write({ text: 'item ' + i, n: i }); call.end(); },
  Bidi: (call) => { call.on('data', (m) => call.write({ text: 're:' + m.text, n: m.n })); call.on('end', () => call.end()); },
  Fail: (call, cb) => {
    if (call.request.text === 'late') {
      // headers first, then the error in the trailers
      call.sendMetadata(new grpc.Metadata());
      setTimeout(() => cb({ code: grpc.status.INVALID_ARGUMENT, details: 'bad input: ✓ 50%' }), 5);
    } else {
      // nothing sent yet: grpc-js answers Trailers-Only
      cb({ code: grpc.status.PERMISSION_DENIED, details: 'denied' });
    }
  },
});

const unary = (client, method, msg, md) => new Promise((resolve) => client[method](msg, md || new grpc.Metadata(), (err, res) => resolve(err || res)));

server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), async (err) => {
  if (err) throw err;
  const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('x-tenant', 'blue');
  md.set('x-token-bin', Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  await unary(client, 'Unary', { text: 'hello', n: 1 }, md);
  await new Promise((resolve) => {
    const call = client.ServerStream({ text: 'list', n: 5 });
    call.on('data', () => {});
    call.on('end', resolve);
    call.on('error', resolve);
  });
  await new Promise((resolve) => {
    const call = client.ClientStream((e, r) => resolve(r));
    for (let i = 1; i <= 4; i++) call.write({ text: 'part', n: i });
    call.end();
  });
  await new Promise((resolve) => {
    const call = client.Bidi();
    call.on('data', () => {});
    call.on('end', resolve);
    call.on('error', resolve);
    for (let i = 0; i < 3; i++) call.write({ text: 'ping' + i, n: i });
    call.end();
  });
  await unary(client, 'Fail', { text: 'late' });
  await unary(client, 'Fail', { text: 'now' });
  // a method this server does not implement: the client's stub sends it anyway
  await new Promise((resolve) => client.makeUnaryRequest('/telegen.test.Echo/Missing', (x) => x, (x) => x, Buffer.alloc(0), (e) => resolve(e)));
  await unary(client, 'Unary', { text: 'large', blob: Buffer.alloc(20000, 7), n: 40000 });
  client.close();
  server.tryShutdown(() => process.exit(0));
});
