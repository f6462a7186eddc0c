// Records gRPC traffic for the http2 decoder tests: @grpc/grpc-js server and client on
// 127.0.0.1 with unary, client-streaming, server-streaming, bidi, an error status, a large
// message (many DATA frames) and gzip-compressed messages. Usage: node grpc.js PORT
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const port = Number(process.argv[2] || 50051);
const def = loader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true });
const Echo = grpc.loadPackageDefinition(def).telegen.test.Echo;

const server = new grpc.Server();
server.addService(Echo.service, {
  Unary: (call, cb) => cb(null, { text: 'echo:' + call.request.text, blob: call.request.blob, n: call.request.n + 1 }),
  ClientStream: (call, cb) => { let n = 0; call.on('data', (m) => { n += m.n; }); call.on('end', () => cb(null, { text: 'sum', n })); },
  ServerStream: (call) => { for (let i = 0; i < call.request.n; i++) call.write({ text: 'item ' + i, n: i }); call.end(); },
  Bidi: (call) => { call.on('data', (m) => call.write({ text: 're:' + m.text, n: m.n })); call.on('end', () => call.end()); },
  Fail: (call, cb) => cb({ code: grpc.status.NOT_FOUND, details: 'no such thing: ✓ 100%' }),
});

function unary(client, method, msg) {
  return new Promise((resolve) => client[method](msg, (err, res) => resolve(err || res)));
}

server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), async (err) => {
  if (err) throw err;
  const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  await unary(client, 'Unary', { text: 'hello', n: 1 });
  await unary(client, 'Unary', { text: 'again', n: 2 });
  await unary(client, 'Unary', { text: 'large', blob: Buffer.alloc(40000, 7), n: 3 });
  await new Promise((resolve) => {
    const call = client.ClientStream((e, r) => resolve(r));
    for (let i = 1; i <= 4; i++) call.write({ text: 'part', n: i });
    call.end();
  });
  await new Promise((resolve) => {
    const call = client.ServerStream({ text: 'list', n: 5 });
    call.on('data', () => {});
    call.on('end', resolve);
    call.on('error', resolve);
  });
  await new Promise((resolve) => {
    const call = client.Bidi();
    call.on('data', () => {});
    call.on('end', resolve);
    call.on('error', resolve);
    for (let i = 0; i < 3; i++) call.write({ text: 'ping' + i, n: i });
    call.end();
  });
  await unary(client, 'Fail', { text: 'missing' });
  const gz = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
  await unary(gz, 'Unary', { text: 'compressed '.repeat(50), n: 4 });
  client.close();
  gz.close();
  server.tryShutdown(() => process.exit(0));
});
