// A UDP DNS flow whose first datagram the agent sees is an answer (the agent started between a
// query and its answer on a resolver's long-lived socket), and, on the server's side, whose first
// datagram seen is the answer it sends. A UDP flow's role used to be its first datagram's
// direction: the client became the "server" of its flow and the server the "client", so no later
// exchange of either flow decoded. Now the bytes decide (the QR bit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { outputOf, requireBpf, startAgentMidExchange, waitFor, RunningAgent } from '../helpers/agent';
import { repoRoot } from '../helpers/decoder';

const SERVER = 2;
const CLIENT = 3;

// A DNS server on a UDP port: answers every A query with 192.0.2.1, the first one only when told.
const SERVER_JS = `
const dgram = require('dgram');
const packet = require(${JSON.stringify(path.join(repoRoot, 'node_modules', 'dns-packet'))});
const s = dgram.createSocket('udp4');
let first = true;
let held;
s.on('message', (m, r) => {
  const q = packet.decode(m);
  const a = packet.encode({ id: q.id, type: 'response', flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE, questions: q.questions,
    answers: [{ name: q.questions[0].name, type: 'A', class: 'IN', ttl: 60, data: '192.0.2.1' }] });
  const send = () => s.send(a, r.port, r.address);
  if (first) { first = false; held = send; console.log('held'); } else send();
});
s.bind(0, '127.0.0.1', () => console.log('listening ' + s.address().port));
require('readline').createInterface({ input: process.stdin }).on('line', (l) => { if (l === 'release' && held) held(); });
`;

// One connected UDP socket: a query in flight until the server is told, then N queries per "go N".
const CLIENT_JS = `
const dgram = require('dgram');
const packet = require(${JSON.stringify(path.join(repoRoot, 'node_modules', 'dns-packet'))});
const s = dgram.createSocket('udp4');
let id = 1;
let waiting;
s.on('message', (m) => { const r = packet.decode(m); if (waiting && r.id === waiting.id) { const w = waiting; waiting = undefined; w.ok(); } });
const ask = (name) => new Promise((ok) => { const q = { id: id++, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] }; waiting = { id: q.id, ok }; s.send(packet.encode(q)); });
s.connect(Number(process.argv[2]), '127.0.0.1', async () => {
  const slow = ask('slow.example.test').then(() => console.log('slow done'));
  console.log('slow sent');
  await slow;
  require('readline').createInterface({ input: process.stdin }).on('line', async (l) => {
    if (l === 'end') { s.close(); return; }
    for (let i = 0; i < Number(l.split(' ')[1]); i++) await ask('after' + i + '.example.test');
    console.log('batch done');
  });
});
`;

const N = 5;

test('UDP DNS flows whose first datagram seen is an answer: the later lookups are CLIENT spans of the resolver and SERVER spans of the server', { timeout: 150_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-late-dns-'));
  fs.writeFileSync(path.join(dir, 'server.js'), SERVER_JS);
  fs.writeFileSync(path.join(dir, 'client.js'), CLIENT_JS);
  fs.writeFileSync(path.join(dir, 'agent.yaml'), 'tracers:\n  profile: { enabled: false }\n');
  const server = spawn(process.execPath, ['server.js'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  const srvOut = outputOf(server);
  let client: ChildProcess | undefined;
  let agent: RunningAgent | undefined;
  try {
    const port = Number(/listening (\d+)/.exec(await waitFor(() => srvOut().includes('listening') ? srvOut() : (server.exitCode !== null && Promise.reject(new Error(`server: ${srvOut()}`))), 15_000, 50))![1]);
    client = spawn(process.execPath, ['client.js', String(port)], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    // The answer the server sends then is the first datagram of either flow the agent sees.
    ({ agent } = await startAgentMidExchange(server, srvOut, client, path.join(dir, 'agent.yaml'), N));

    const names = (kind: number, pid: number | undefined) => agent!.spans().filter((s) => s.kind === kind && s.attributes['process.pid'] === pid
      && String(s.attributes['dns.question.name']).startsWith('after')).map((s) => String(s.attributes['dns.question.name']));
    await waitFor(() => names(CLIENT, client!.pid).length >= N && names(SERVER, server.pid).length >= N, 20_000).catch(() => undefined);
    client.stdin!.write('end\n');
    assert.equal(await agent.stop(), 0);
    const want = Array.from({ length: N }, (_, i) => `after${i}.example.test`);
    assert.deepEqual(names(CLIENT, client.pid).sort(), want, 'the resolver\'s lookups, as CLIENT spans');
    assert.deepEqual(names(SERVER, server.pid).sort(), want, 'the server\'s answers, as SERVER spans');
    assert.deepEqual(agent.spans().filter((s) => s.attributes['process.pid'] === client!.pid && s.kind === SERVER).map((s) => s.name), [], 'no SERVER span of the resolver');
    for (const s of agent.spans().filter((x) => x.kind === CLIENT && x.attributes['process.pid'] === client!.pid && String(x.attributes['dns.question.name']).startsWith('after'))) {
      assert.equal(s.attributes['server.port'], port);
    }
  } finally {
    if (agent) await agent.stop();
    for (const p of [client, server]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
