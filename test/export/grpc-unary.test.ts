// The gRPC client against servers the grpc-js test receiver cannot play: one that takes no gzip
// (it says so in grpc-accept-encoding and answers UNIMPLEMENTED, as the gRPC spec has it), and an
// HTTP/2 proxy that answers 503 without any gRPC status. Real node:http2 servers on 127.0.0.1.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createTraceExporter, resolveExportConfig } from '../../host/src/export';
import { makeSpan } from './fixtures';

const servers: http2.Http2Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

interface Seen { encoding?: string; compressedFlag: number; bytes: number; declared: number }

/** An HTTP/2 server calling `answer` for each request once its body is in. */
async function server(answer: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer) => void): Promise<string> {
  const s = http2.createServer();
  s.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => answer(stream, headers, Buffer.concat(chunks)));
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

test('grpc: a server without gzip refuses the first compressed request; later ones go uncompressed and are accepted', async () => {
  const seen: Seen[] = [];
  const url = await server((stream, headers, body) => {
    seen.push({ encoding: headers['grpc-encoding'] as string | undefined, compressedFlag: body[0], bytes: body.length, declared: body.readUInt32BE(1) });
    if (headers['grpc-encoding'] === 'gzip') {
      // Trailers-Only: the status in the response headers.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': 'identity', 'grpc-status': '12', 'grpc-message': 'Compression%20not%20supported' }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': 'identity' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.from([0, 0, 0, 0, 0])); // an empty ExportTraceServiceResponse
  });
  const exp = createTraceExporter(resolveExportConfig({ endpoint: url, compression: 'gzip' }, {}), '/x');
  const first = await exp.export([makeSpan(1)]);
  assert.equal(first.code, 'failure');
  assert.match(String(first.error), /UNIMPLEMENTED: Compression not supported/);
  assert.equal((await exp.export([makeSpan(2)])).code, 'success');
  await exp.shutdown();
  assert.deepEqual(seen.map((s) => [s.encoding, s.compressedFlag]), [['gzip', 1], [undefined, 0]]);
  // One length-prefixed message per request; uncompressed, a span's protobuf is a few hundred bytes.
  for (const s of seen) assert.equal(s.bytes, s.declared + 5);
  assert.ok(seen[1].declared > 200, `${seen[1].declared} bytes`);
});

test('grpc: an HTTP 503 without a gRPC status (a proxy in front of the collector) is retryable', async () => {
  const url = await server((stream) => {
    stream.respond({ ':status': 503, 'content-type': 'text/plain' });
    stream.end('upstream unavailable');
  });
  const exp = createTraceExporter(resolveExportConfig({ endpoint: url, compression: 'gzip' }, {}), '/x');
  const r = await exp.export([makeSpan(1)]);
  assert.equal(r.code, 'retryable', String(r.error));
  assert.match(String(r.error), /UNAVAILABLE: Received HTTP status code 503/);
  await exp.shutdown();
});
