// A keep-alive HTTP/1 connection older than the agent whose first bytes the agent sees are a
// response: the agent started while a request was in flight. The server runs in its own network
// namespace (its own loopback), so the agent's socket scan does not see it listening and the
// bytes alone must tell the sides. A status line read by the client used to score as a request
// received (HTTP/1's detect ignored the direction), making the client the "server" of every
// later exchange on that connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { outputOf, requireBpf, startAgentMidExchange, waitFor, freePort, FlatSpan, RunningAgent } from '../helpers/agent';

const SERVER = 2;
const CLIENT = 3;

// /slow is answered when "release" comes on stdin; anything else at once.
const SERVER_JS = `
const http = require('http');
const held = [];
http.createServer((q, s) => {
  const reply = () => s.end('body of ' + q.url + '\\n');
  if (q.url === '/slow') { held.push(reply); console.log('held'); } else reply();
}).listen(Number(process.argv[2]), '127.0.0.1', () => console.log('listening'));
require('readline').createInterface({ input: process.stdin }).on('line', (l) => { if (l === 'release') while (held.length) held.shift()(); });
`;

// One keep-alive socket: /warm, then /slow (in flight until the server is told), then N
// requests per "go N" line, one after another on the same socket.
const CLIENT_JS = `
const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const port = Number(process.argv[2]);
const sockets = new Set();
const get = (p) => new Promise((ok, ko) => {
  const q = http.get({ host: '127.0.0.1', port, path: p, agent }, (r) => { r.resume(); r.on('end', () => ok(r.statusCode)); });
  q.on('socket', (s) => sockets.add(s));
  q.on('error', ko);
});
(async () => {
  await get('/warm');
  const slow = get('/slow').then(() => console.log('slow done'));
  console.log('slow sent');
  await slow;
  require('readline').createInterface({ input: process.stdin }).on('line', async (l) => {
    if (l === 'end') { agent.destroy(); return; }
    for (let i = 0; i < Number(l.split(' ')[1]); i++) await get('/after/' + i);
    console.log('batch done sockets=' + sockets.size);
  });
})().catch((e) => { console.error(e); process.exit(1); });
`;

const N = 8;

test('a keep-alive client whose first bytes seen are a response, to a server the agent cannot see listening: later requests are CLIENT spans of the client', { timeout: 150_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-late-role-'));
  fs.writeFileSync(path.join(dir, 'server.js'), SERVER_JS);
  fs.writeFileSync(path.join(dir, 'client.js'), CLIENT_JS);
  fs.writeFileSync(path.join(dir, 'agent.yaml'), 'tracers:\n  profile: { enabled: false }\n');
  // Free here too: a listener on the same port in the agent's namespace would decide the sides.
  const port = await freePort();
  // unshare and nsenter exec their command: the child's pid is node's.
  const server = spawn('unshare', ['--net', '--', 'sh', '-c', `ip link set lo up && exec ${process.execPath} server.js ${port}`], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  const srvOut = outputOf(server);
  let client: ChildProcess | undefined;
  let agent: RunningAgent | undefined;
  try {
    await waitFor(() => srvOut().includes('listening') || (server.exitCode !== null && Promise.reject(new Error(`server: ${srvOut()}`))), 15_000, 50);
    client = spawn('nsenter', [`--net=/proc/${server.pid}/ns/net`, '--', process.execPath, 'client.js', String(port)], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    // The response the server writes then is the first bytes of this connection the agent sees.
    const started = await startAgentMidExchange(server, srvOut, client, path.join(dir, 'agent.yaml'), N);
    agent = started.agent;
    const cliOut = started.cliOut;
    assert.match(cliOut(), /batch done sockets=1\b/, 'every request went over the one connection opened before the agent');

    const ofPort = (kind: number, pid: number | undefined) => agent!.spans().filter((s) => s.kind === kind && s.attributes['process.pid'] === pid
      && Number(s.attributes['server.port']) === port);
    const late = (s: FlatSpan) => String(s.attributes['url.path']).startsWith('/after/');
    await waitFor(() => ofPort(CLIENT, client!.pid).filter(late).length >= N && ofPort(SERVER, server.pid).filter(late).length >= N, 20_000).catch(() => undefined);
    client.stdin!.write('end\n');
    assert.equal(await agent.stop(), 0);

    const mine = agent.spans().filter((s) => s.attributes['process.pid'] === client!.pid);
    assert.deepEqual(mine.filter((s) => s.kind === SERVER).map((s) => `${s.name} ${s.attributes['url.path']}`), [], 'no SERVER span of the client process');
    const clientSpans = ofPort(CLIENT, client.pid).filter(late);
    assert.deepEqual(clientSpans.map((s) => s.attributes['url.path']).sort(), Array.from({ length: N }, (_, i) => `/after/${i}`).sort());
    for (const s of clientSpans) {
      assert.equal(s.attributes['http.request.method'], 'GET');
      assert.equal(s.attributes['http.response.status_code'], 200);
    }
    // The server's side of the same connection (its first bytes seen: the response it wrote).
    const serverSpans = ofPort(SERVER, server.pid).filter(late);
    assert.equal(serverSpans.length, N, `server spans: ${serverSpans.map((s) => s.attributes['url.path']).join(', ')}`);
    assert.deepEqual(agent.spans().filter((s) => s.attributes['process.pid'] === server.pid && s.kind === CLIENT).map((s) => s.name), [], 'no CLIENT span of the server process');
  } finally {
    if (agent) await agent.stop();
    for (const p of [client, server]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
