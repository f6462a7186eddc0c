// Records grpc-edge.pcap: @grpc/grpc-js server and client on 127.0.0.1, the shapes grpc-calls.js
// does not hold: a deadline the server misses (the client resets the stream), a server stream the
// client cancels after two messages, a 200 KB response over many DATA frames and WINDOW_UPDATEs,
// and 8 KB of request metadata. (Calls in flight at once put several streams' DATA in one
// segment, which calls.js cannot attribute per stream: nghttpd-options.pcap has many streams.)
// Usage: node grpc-edge.js PORT
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const port = Number(process.argv[2] || 50053);
const def = loader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true });
const Echo = grpc.loadPackageDefinition(def).telegen.test.Echo;

const server = new grpc.Server();
server.addService(Echo.service, {
  Unary: (call, cb) => {
    const wait = call.request.text === 'slow' ? 300 : 0;
    setTimeout(() => cb(null, { text: 'ok', blob: Buffer.alloc(call.request.n > 1000 ? call.request.n : 0, 5), n: call.request.n }), wait);
  },
  ServerStream: (call) => {
    let i = 0;
    const t = setInterval(() => {
      if (call.cancelled || i >= call.request.n) { clearInterval(t); if (!call.cancelled) call.end(); return; }
      call.write({ text: 'item ' + i, n: i++ });
    }, 20);
  },
  ClientStream: (call, cb) => cb(null, {}),
  Bidi: (call) => call.end(),
  Fail: (call, cb) => cb(null, {}),
});

const unary = (client, msg, opts, md) => new Promise((resolve) => client.Unary(msg, md || new grpc.Metadata(), opts || {}, (err, res) => resolve(err || res)));

server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), async (err) => {
  if (err) throw err;
  const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  await unary(client, { text: 'warm', n: 1 });
  await unary(client, { text: 'slow', n: 2 }, { deadline: Date.now() + 80 });
  await new Promise((resolve) => {
    const call = client.ServerStream({ text: 'list', n: 50 });
    let got = 0;
    call.on('data', () => { if (++got === 2) call.cancel(); });
    call.on('error', resolve);
    call.on('end', resolve);
  });
  await unary(client, { text: 'big', n: 200000 });
  const md = new grpc.Metadata();
  md.set('x-large', 'm'.repeat(8000));
  await unary(client, { text: 'meta', n: 3 }, {}, md);
  await new Promise((r) => setTimeout(r, 400)); // the slow call's late answer, if any
  client.close();
  server.tryShutdown(() => process.exit(0));
});
