// The agent's own API traffic is not the user's: its page polls /api/* every second, and the
// client side of that (the browser, curl) was traced like any application's, filling the page's
// latest traces and putting the agent in the service graph as an external node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { requireBpf, startAgent, startServer, curl, waitFor } from '../helpers/agent';

const CLIENT = 3, SERVER = 2;

test('requests to the agent\'s own API make no spans; the same client\'s requests to an application do', { timeout: 120_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const agent = await startAgent();
  const app = await startServer(process.execPath, ['-e',
    "const s=require('http').createServer((q,r)=>r.end('ok '+q.url));s.listen(0,'127.0.0.1',()=>process.stdout.write('listening '+s.address().port+'\\n'));process.on('SIGTERM',()=>process.exit(0))"]);
  try {
    const api = `http://127.0.0.1:${agent.apiPort}`;
    for (let i = 0; i < 3; i++) {
      curl([`${api}/api/status`, '-o', '/dev/null']);
      curl([`${api}/api/traces?limit=5`, '-o', '/dev/null']);
      assert.equal(curl([`http://127.0.0.1:${app.port}/after-api-${i}`]), `ok /after-api-${i}`);
    }
    const onApp = () => agent.spans().filter((s) => s.attributes['server.port'] === app.port);
    await waitFor(() => onApp().filter((s) => s.kind === SERVER).length >= 3 && onApp().filter((s) => s.kind === CLIENT).length >= 3, 20_000);
    const metrics = await (await agent.api('/metrics')).text();
    await agent.stop();
    const toApi = agent.spans().filter((s) => s.attributes['server.port'] === agent.apiPort);
    assert.deepEqual(toApi.map((s) => `${s.kind} ${s.name}`), [], 'no span of the agent\'s API traffic');
    assert.deepEqual(onApp().filter((s) => s.kind === CLIENT).map((s) => s.attributes['url.path']).sort(), ['/after-api-0', '/after-api-1', '/after-api-2']);
    // Counted where a user looks for connections left alone, with why.
    assert.match(metrics, /telegen_connections_unparsed_total\{reason="agent_api"\} [1-9]/);
  } finally {
    await app.stop();
    await agent.stop();
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
});
