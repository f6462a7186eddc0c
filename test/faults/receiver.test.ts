// Faults on the export side: the OTLP receiver unavailable, slow, down and rejecting. Spans are
// retried until delivered; rejected ones are counted as dropped, never lost silently. Delivery is
// at-least-once (OTLP has no idempotency key, dedup is the receiver's business): a span arrives
// twice only when a request went unanswered (deadline, connection cut mid-call — the receiver
// stopping here) and was resent, and every such resend is counted in
// telegen_export_unconfirmed_resent_total.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import { repoRoot } from '../helpers/decoder';
import { requireBpf, startAgent, startServer } from '../helpers/agent';
import { startReceiver } from '../helpers/otlp-receiver';
import { load, metrics, sum, faultConfig } from './helpers';
import * as os from 'os';

test('OTLP receiver unavailable, slow, down, then rejecting: every span delivered (duplicates only from counted unconfirmed resends) or counted as dropped', { timeout: 300_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const rx = await startReceiver({ protocol: 'grpc' });
  rx.setMode({ kind: 'unavailable' });
  const agent = await startAgent({ config: faultConfig(os.tmpdir()), env: { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } })
    .catch(async (e) => { await rx.stop(); throw e; }); // a failed start must not leave the receiver holding the test process
  const srv = await startServer(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'http-server.js'), '0']);
  const ours = (p: string) => rx.spans().filter((s) => s.attributes['server.port'] === srv.port && s.kind === 2 && s.attributes['url.path'] === p);
  try {
    // 1. unavailable (gRPC UNAVAILABLE): retried; delivered once the receiver recovers.
    await load(srv.port, 20, 4, { path: '/users/1' });
    await rx.waitFor(() => rx.attempts.some((a) => a.signal === 'traces' && a.result === 'unavailable'), 60_000, 'a refused trace export');
    rx.setMode({ kind: 'ok' });
    await rx.waitFor(() => ours('/users/1').length >= 20, 90_000, '20 spans after recovery');

    // 2. slow (accepts after 1.5 s each time).
    rx.setMode({ kind: 'slow', delayMs: 1500 });
    await load(srv.port, 20, 4, { path: '/users/2' });
    await rx.waitFor(() => ours('/users/2').length >= 20, 90_000, '20 spans through a slow receiver');
    rx.setMode({ kind: 'ok' });

    // 3. down (port closed), then back on the same port.
    await rx.stop();
    await load(srv.port, 20, 4, { path: '/users/3' });
    await new Promise((r) => setTimeout(r, 3000));
    await rx.restart();
    await rx.waitFor(() => ours('/users/3').length >= 20, 120_000, '20 spans after the receiver came back');

    // 4. rejecting (INVALID_ARGUMENT: not retryable): dropped and counted. The receiver keeps
    // rejecting until it has been offered all 20 of ours (the agent exports the whole machine's
    // spans, so other traffic's rejections alone prove nothing).
    const dropped0 = sum(await metrics(agent), 'telegen_export_dropped_total', { signal: 'traces', reason: 'export_failed' });
    rx.setMode({ kind: 'permanent', message: 'fault test' });
    await load(srv.port, 20, 4, { path: '/users/4' });
    const offered = () => rx.rejectedSpans().filter((s) => s.attributes['server.port'] === srv.port && s.kind === 2 && s.attributes['url.path'] === '/users/4').length;
    await rx.waitFor(() => offered() >= 20, 90_000, 'all 20 /users/4 spans offered and rejected');
    let dropped = 0;
    for (let i = 0; i < 100 && dropped < 20; i++) {
      dropped = sum(await metrics(agent), 'telegen_export_dropped_total', { signal: 'traces', reason: 'export_failed' }) - dropped0;
      if (dropped < 20) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(dropped >= offered(), `dropped_export_failed grew by ${dropped}, expected at least the ${offered()} rejected spans of ours`);
    rx.setMode({ kind: 'ok' });
    const resent = sum(await metrics(agent), 'telegen_export_unconfirmed_resent_total', { signal: 'traces' });
    assert.equal(await agent.stop(), 0);
    const unique = (xs: Array<{ spanId: string }>) => new Set(xs.map((s) => s.spanId)).size;
    // No loss: every request of phases 1-3 arrived; rejected spans never did.
    for (const p of ['/users/1', '/users/2', '/users/3']) assert.equal(unique(ours(p)), 20, p);
    assert.equal(ours('/users/4').length, 0);
    // Duplicates (over every span the agent exported, not only ours) never exceed what the agent
    // counted as resent after an unanswered request; refusals alone never duplicate.
    const all = rx.spans();
    const dup = all.length - unique(all);
    t.diagnostic(`deliveries ${all.length}, distinct ${unique(all)}, unconfirmed resends counted ${resent}`);
    assert.ok(dup <= resent, `${dup} duplicate deliveries but only ${resent} unconfirmed resends counted`);
  } finally {
    await srv.stop();
    if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    await rx.stop().catch(() => undefined);
  }
});
