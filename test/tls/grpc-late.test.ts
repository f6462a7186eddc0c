// gRPC over TLS between two node processes (@grpc/grpc-js, node's own OpenSSL and nghttp2), on
// a connection opened and used before the agent started. HPACK's dynamic table then holds
// entries the agent never saw (grpc-js sends :path, content-type and grpc-status as table
// references after their first use), so the wire alone cannot name the methods. The nghttp2
// uprobes (bpf/tls.bpf.c: node's Http2Session::OnHeaderCallback, nghttp2_submit_*) report the
// fields from the processes' own memory; the decoder fills the unknown ones only when they
// agree with everything the wire did decode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { spawn, ChildProcess } from 'child_process';
import { requireBpf, startAgent, startServer, waitFor, FlatSpan } from '../helpers/agent';
import { tlsScratch, GRPC_ECHO_JS } from './tls-helpers';

const SERVER = 2;
const CLIENT = 3;
const SERVER_JS = GRPC_ECHO_JS + `
const server = new grpc.Server();
server.addService(Echo.service, {
  Unary: (call, cb) => cb(null, { text: 'echo:' + call.request.text, n: call.request.n }),
  ClientStream: (call, cb) => { let n = 0; call.on('data', (m) => { n += m.n; }); call.on('end', () => cb(null, { n })); },
  ServerStream: (call) => { for (let i = 0; i < call.request.n; i++) call.write({ n: i }); call.end(); },
  Bidi: (call) => { call.on('data', (m) => call.write(m)); call.on('end', () => call.end()); },
  Fail: (_call, cb) => cb({ code: grpc.status.PERMISSION_DENIED, details: 'denied' }),
});
const creds = grpc.ServerCredentials.createSsl(null, [{ private_key: fs.readFileSync(process.argv[2]), cert_chain: fs.readFileSync(process.argv[3]) }], false);
server.bindAsync('127.0.0.1:0', creds, (err, port) => { if (err) throw err; console.log('listening ' + port); });
`;

// One round of every call kind, in this order; prints each method as it completes. A line on
// stdin starts the next rounds.
const CLIENT_JS = GRPC_ECHO_JS + `
const c = new Echo('127.0.0.1:' + process.argv[2], grpc.credentials.createSsl(fs.readFileSync(process.argv[3])), { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
const unary = (m, msg) => new Promise((res) => c[m](msg, () => res()));
async function round() {
  await unary('Unary', { text: 'a', n: 1 }); console.log('call Unary');
  await new Promise((res) => { const call = c.ClientStream(() => res()); for (let i = 0; i < 3; i++) call.write({ n: i }); call.end(); }); console.log('call ClientStream');
  await new Promise((res) => { const call = c.ServerStream({ n: 4 }); call.on('data', () => {}); call.on('end', res); call.on('error', res); }); console.log('call ServerStream');
  await new Promise((res) => { const call = c.Bidi(); call.on('data', () => {}); call.on('end', res); call.on('error', res); call.write({ n: 1 }); call.write({ n: 2 }); call.end(); }); console.log('call Bidi');
  await unary('Fail', {}); console.log('call Fail');
}
(async () => {
  await round(); console.log('before-agent done');
  process.stdin.once('data', async (d) => { const n = Number(String(d)); for (let i = 0; i < n; i++) await round(); console.log('after-agent done'); c.close(); setTimeout(() => process.exit(0), 300); });
})();
`;

const ROUNDS = 4;
const KINDS = ['Unary', 'ClientStream', 'ServerStream', 'Bidi', 'Fail'];

function lineWaiter(proc: ChildProcess): { out: () => string; until(re: RegExp, ms: number): Promise<void> } {
  let out = '';
  proc.stdout!.on('data', (d) => { out += String(d); });
  proc.stderr!.on('data', (d) => { out += String(d); });
  return {
    out: () => out,
    until: (re, ms) => waitFor(() => re.test(out) || (proc.exitCode !== null && Promise.reject(new Error(`client exited: ${out}`))), ms, 50).then(() => undefined),
  };
}

test('gRPC over TLS on a connection older than the agent: methods named by the nghttp2 uprobes', { timeout: 150_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const { pki, file, cfg } = tlsScratch({ 'server.js': SERVER_JS, 'client.js': CLIENT_JS });
  const [srvFile, cliFile] = [file('server.js'), file('client.js')];
  const server = await startServer(process.execPath, [srvFile, pki.key, pki.cert]);
  const client = spawn(process.execPath, [cliFile, String(server.port), pki.ca], { stdio: ['pipe', 'pipe', 'pipe'] });
  const cl = lineWaiter(client);
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    await cl.until(/before-agent done/, 30_000);
    agent = await startAgent({ config: cfg });
    await waitFor(() => agent!.logs.join('').includes('nghttp2 hooked'), 30_000);
    client.stdin!.write(`${ROUNDS}\n`);
    await cl.until(/after-agent done/, 60_000);
    // Client stream ids are 1, 3, 5…: call k (0-based, counting the round before the agent) is stream 2k + 1.
    const truth = (sid: number) => KINDS[((sid - 1) / 2) % KINDS.length];
    const first = 2 * KINDS.length + 1;
    const expected = ROUNDS * KINDS.length;
    const onConn = (kind: number, pid: number) => agent!.spans().filter((s) => s.kind === kind && s.attributes['process.pid'] === pid
      && s.attributes['network.protocol.version'] === '2' && Number(s.attributes['telegen.http2.stream_id']) >= first);
    const named = (kind: number, pid: number) => onConn(kind, pid).filter((s) => s.attributes['rpc.method'] !== undefined).length;
    const enough = Math.ceil(0.9 * expected);
    await waitFor(() => named(CLIENT, client.pid!) >= enough && named(SERVER, server.proc.pid!) >= enough, 20_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 3000)); // stragglers: held exchanges wait up to 2 s for their fields
    assert.equal(await agent.stop(), 0);
    for (const [side, kind, pid] of [['client', CLIENT, client.pid!], ['server', SERVER, server.proc.pid!]] as const) {
      const spans = onConn(kind, pid);
      const named = spans.filter((s: FlatSpan) => s.attributes['rpc.method'] !== undefined);
      for (const s of spans) {
        const sid = Number(s.attributes['telegen.http2.stream_id']);
        const want = truth(sid);
        // never wrong: a method, a service and a status are either right or absent
        if (s.attributes['rpc.method'] !== undefined) {
          assert.equal(s.attributes['rpc.method'], want, `${side} stream ${sid}`);
          assert.equal(s.attributes['rpc.service'], 'telegen.test.Echo');
          assert.equal(s.attributes['rpc.system'], 'grpc');
        }
        const st = s.attributes['rpc.grpc.status_code'];
        if (st !== undefined) assert.equal(st, want === 'Fail' ? 7 : 0, `${side} stream ${sid} status`);
      }
      t.diagnostic(`${side}: ${named.length}/${expected} calls after the late start carry rpc.method; ${spans.filter((s) => s.attributes['telegen.hpack.recovered']).length} filled from nghttp2`);
      assert.ok(named.length >= Math.ceil(0.9 * expected), `${side}: ${named.length} of ${expected} calls named (≥ 90% required); spans: ${spans.length}`);
      assert.ok(spans.some((s) => s.attributes['telegen.hpack.recovered'] === true), `${side}: no field came from the uprobes`);
      const statuses = spans.filter((s) => s.attributes['rpc.grpc.status_code'] !== undefined).length;
      assert.ok(statuses >= Math.ceil(0.9 * expected), `${side}: ${statuses} of ${expected} calls with a gRPC status`);
    }
  } finally {
    if (client.exitCode === null) client.kill('SIGKILL');
    await server.stop();
    if (agent && agent.proc.exitCode === null) await agent.stop();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});
