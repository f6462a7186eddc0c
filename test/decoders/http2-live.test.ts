// http2 decoder against live peers, no root needed: @grpc/grpc-js and Node http2 talk through a
// loopback TCP relay that hands every byte to the decoder, as the kernel source would. Includes
// the connection opened and used before the "agent" starts watching it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'net';
import * as path from 'path';
import * as http2 from 'http2';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { loadDecoder, repoRoot, Harness } from '../helpers/decoder';
import { DIR_REQUEST, DIR_RESPONSE, FLAG_ERROR, FLAG_UNKNOWN } from '../../decoders/abi/abi';
import { exchanges, pairs } from './http2-helpers';

interface Relay { port: number; watching: boolean; close(): Promise<void> }

/** 127.0.0.1 relay to `target`; while `watching`, bytes go to the decoder (connection id per socket). */
function relay(h: Harness, target: number): Promise<Relay> {
  let next = 1;
  const sockets = new Set<net.Socket>();
  const r: Relay = { port: 0, watching: true, close: async () => {} };
  const server = net.createServer((client) => {
    const id = next++;
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client); sockets.add(upstream);
    let ts = 1n;
    client.on('data', (b) => { if (r.watching) h.inst.feed(id, DIR_REQUEST, b, ts++); upstream.write(b); });
    upstream.on('data', (b) => { if (r.watching) h.inst.feed(id, DIR_RESPONSE, b, ts++); client.write(b); });
    const end = () => { client.destroy(); upstream.destroy(); h.inst.closeStream(id); };
    client.on('close', end); upstream.on('close', end);
    client.on('error', () => {}); upstream.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    r.port = (server.address() as net.AddressInfo).port;
    r.close = () => new Promise((res) => { for (const s of sockets) s.destroy(); server.close(() => res()); });
    resolve(r);
  }));
}

const def = loader.loadSync(path.join(repoRoot, 'decoders', 'http2', 'testdata', 'record', 'echo.proto'), { keepCase: true });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const Echo = (grpc.loadPackageDefinition(def) as any).telegen.test.Echo;

function grpcServer(): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(Echo.service, {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    Unary: (call: any, cb: any) => cb(null, { text: 'echo:' + call.request.text, n: call.request.n }),
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    ClientStream: (call: any, cb: any) => { let n = 0; call.on('data', (m: any) => { n += m.n; }); call.on('end', () => cb(null, { n })); },
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    ServerStream: (call: any) => { for (let i = 0; i < call.request.n; i++) call.write({ n: i }); call.end(); },
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    Bidi: (call: any) => { call.on('data', (m: any) => call.write(m)); call.on('end', () => call.end()); },
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    Fail: (_call: any, cb: any) => cb({ code: grpc.status.PERMISSION_DENIED, details: 'denied' }),
  });
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(),
    (err, port) => (err ? reject(err) : resolve({ server, port }))));
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const unary = (c: any, m: string, msg: object) => new Promise((res) => c[m](msg, (e: unknown, r: unknown) => res(e ?? r)));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function allKinds(c: any): Promise<void> {
  await unary(c, 'Unary', { text: 'a', n: 1 });
  await new Promise((res) => { const call = c.ClientStream(() => res(null)); for (let i = 0; i < 3; i++) call.write({ n: i }); call.end(); });
  await new Promise((res) => { const call = c.ServerStream({ n: 4 }); call.on('data', () => {}); call.on('end', res); call.on('error', res); });
  await new Promise((res) => { const call = c.Bidi(); call.on('data', () => {}); call.on('end', res); call.on('error', res); call.write({ n: 1 }); call.write({ n: 2 }); call.end(); });
  await unary(c, 'Fail', {});
}

const settle = () => new Promise((r) => setTimeout(r, 150));

test('live grpc-js through a relay: every call kind with the right method, status and message counts', async () => {
  const h = loadDecoder('http2');
  const { server, port } = await grpcServer();
  const r = await relay(h, port);
  const client = new Echo(`127.0.0.1:${r.port}`, grpc.credentials.createInsecure());
  try {
    await allKinds(client);
    await allKinds(client); // second round: :path now comes from the dynamic table
  } finally {
    client.close();
    await settle();
    await r.close();
    server.forceShutdown();
  }
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  const ex = exchanges(h);
  assert.equal(ex.length, 10);
  const got = ex.map((e) => [e.attributes['rpc.method'], e.attributes['rpc.grpc.status_code'], e.attributes['telegen.rpc.request.messages'], e.attributes['telegen.rpc.response.messages']]);
  const round = [['Unary', 0, 1, 1], ['ClientStream', 0, 3, 1], ['ServerStream', 0, 1, 4], ['Bidi', 0, 2, 2], ['Fail', 7, 1, 0]];
  assert.deepEqual(got, [...round, ...round]);
  for (const e of ex) {
    assert.equal(e.attributes['rpc.service'], 'telegen.test.Echo');
    assert.equal(e.flags & FLAG_UNKNOWN, 0);
    assert.equal(!!(e.flags & FLAG_ERROR), e.attributes['rpc.method'] === 'Fail');
  }
});

test('live grpc-js: connection opened and used before the agent watches it — nothing wrong, literals known', async (t) => {
  const h = loadDecoder('http2');
  const { server, port } = await grpcServer();
  const r = await relay(h, port);
  r.watching = false;
  const client = new Echo(`127.0.0.1:${r.port}`, grpc.credentials.createInsecure());
  try {
    await allKinds(client); // before the agent starts
    r.watching = true;
    await allKinds(client);
    await unary(client, 'Unary', { text: 'b', n: 2 });
  } finally {
    client.close();
    await settle();
    await r.close();
    server.forceShutdown();
  }
  assert.equal(h.inst.counters.traps, 0, h.inst.lastError);
  const ex = exchanges(h);
  assert.equal(ex.length, 6);
  let known = 0;
  const truth = ['Unary', 'ClientStream', 'ServerStream', 'Bidi', 'Fail', 'Unary'];
  ex.forEach((e, i) => {
    const m = e.attributes['rpc.method'];
    if (m !== undefined) { assert.equal(m, truth[i]); known++; } else assert.ok(e.flags & FLAG_UNKNOWN);
    // the status and message framing never depend on the missed table entries
    // content-type and grpc-status were table entries sent before we looked: gRPC is inferred
    // from the exact message framing; the status is unknown, never guessed
    assert.equal(e.attributes['rpc.system'], 'grpc');
    assert.equal(e.attributes['rpc.service'], 'telegen.test.Echo');
    const st = e.attributes['rpc.grpc.status_code'];
    if (st !== undefined) assert.equal(st, truth[i] === 'Fail' ? 7 : 0);
    for (const [n, v] of pairs(e, 'telegen.http2.request.headers')) if (n === ':path') assert.equal(v, `/telegen.test.Echo/${truth[i]}`);
  });
  assert.equal(ex[1].attributes['telegen.rpc.request.messages'], 3); // ClientStream
  assert.equal(ex[2].attributes['telegen.rpc.response.messages'], 4); // ServerStream
  t.diagnostic(`rpc.method known from the wire for ${known}/${ex.length} calls after a late start`);
});

test('live Node http2 through a relay: statuses, bodies, trailers', async () => {
  const h = loadDecoder('http2');
  const srv = http2.createServer();
  srv.on('stream', (stream, headers) => {
    if (headers[':path'] === '/t') {
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-sum': '3' }));
      stream.end('abc');
    } else { stream.respond({ ':status': 503 }); stream.end(); }
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const r = await relay(h, (srv.address() as net.AddressInfo).port);
  const session = http2.connect(`http://127.0.0.1:${r.port}`);
  const get = (p: string) => new Promise<void>((res) => { const q = session.request({ ':path': p }); q.on('data', () => {}); q.on('end', () => res()); q.on('error', () => res()); q.end(); });
  await get('/t');
  await get('/down');
  await new Promise<void>((res) => session.close(() => res()));
  await settle();
  await r.close();
  await new Promise<void>((res) => srv.close(() => res()));
  const ex = exchanges(h);
  assert.equal(ex.length, 2);
  assert.equal(ex[0].attributes['http.response.status_code'], 200);
  assert.equal(ex[0].attributes['http.response.body.size'], 3);
  assert.deepEqual(pairs(ex[0], 'telegen.http2.response.trailers'), [['x-sum', '3']]);
  assert.equal(ex[1].attributes['http.response.status_code'], 503);
  assert.ok(ex[1].flags & FLAG_ERROR);
});
