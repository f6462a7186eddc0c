// Records held-out Node http2 traffic (prior knowledge, cleartext): padding on every frame both
// ways, never-indexed (sensitive) fields, cookie crumbs, request trailers, 103 before the final
// status, HEAD and 204, a server RST_STREAM (REFUSED_STREAM), PRIORITY frames, many streams with
// mostly repeated headers (values of ~300 bytes: the 4096-byte dynamic tables evict; a table below 4096 is not recorded: tshark 4.0 then decodes no header, SOURCES.md), and a GOAWAY with an
// error while a stream is open. Usage: node heldout.js PORT
'use strict';
const http2 = require('http2');
const port = Number(process.argv[2] || 19230);
const { PADDING_STRATEGY_MAX, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

const server = http2.createServer({ paddingStrategy: PADDING_STRATEGY_MAX });
server.on('stream', (stream, headers) => {
  const p = headers[':path'];
  stream.on('error', () => {});
  if (p === '/early') {
    stream.additionalHeaders({ ':status': 103, link: '</a.css>; rel=preload' });
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('after hints');
    return;
  }
  if (p === '/trailers') {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('trailers', () => {});
    stream.on('end', () => { stream.respond({ ':status': 200, 'content-length': String(Buffer.concat(chunks).length) }); stream.end(Buffer.concat(chunks)); });
    return;
  }
  if (p === '/nocontent') { stream.respond({ ':status': 204 }, { endStream: true }); return; }
  if (p === '/refuse') { stream.close(NGHTTP2_REFUSED_STREAM); return; }
  if (p === '/hang') return; // answered by the GOAWAY
  if (headers[':method'] === 'HEAD') { stream.respond({ ':status': 200, 'content-length': '1234', 'content-type': 'text/html' }, { endStream: true }); return; }
  stream.respond({ ':status': 200, 'content-type': 'application/json', 'cache-control': 'max-age=' + (p.length % 7), 'x-request-path': p,
    'set-cookie': ['a=1; Path=/', 'b=2; HttpOnly'] });
  stream.end(JSON.stringify({ path: p }));
});

server.listen(port, '127.0.0.1', async () => {
  const session = http2.connect(`http://127.0.0.1:${port}`, { paddingStrategy: PADDING_STRATEGY_MAX });
  session.on('error', () => {});
  const req = (headers, body, opts = {}) => new Promise((resolve) => {
    const r = session.request(headers, opts);
    r.on('response', () => {});
    r.on('data', () => {});
    r.on('end', resolve);
    r.on('error', resolve);
    r.on('close', resolve);
    if (opts.waitForTrailers) r.on('wantTrailers', () => r.sendTrailers({ 'x-sum': '7', 'grpc-like': 'yes' }));
    if (body) r.end(body); else r.end();
  });
  // a sensitive header is sent never-indexed; cookie crumbs are separate fields (RFC 9113 8.2.3)
  const sensitive = { ':path': '/secret', authorization: 'Bearer abc.def', 'x-api-key': 'k-123', cookie: ['sid=1', 'theme=dark', 'lang=en'],
    [http2.sensitiveHeaders]: ['x-api-key'] };
  await req(sensitive);
  await req({ ':path': '/early' });
  await req({ ':method': 'POST', ':path': '/trailers', 'content-type': 'text/plain' }, 'body with trailers', { waitForTrailers: true });
  await req({ ':method': 'HEAD', ':path': '/head' });
  await req({ ':path': '/nocontent' });
  await req({ ':path': '/refuse' });
  // 30 streams, 10 at a time, with long varying header values: the 512-byte tables evict
  for (let round = 0; round < 3; round++) {
    await Promise.all(Array.from({ length: 10 }, (_, i) => req({ ':path': `/item/${round}/${i}`, 'x-trace': `t-${round}-${i}-${'z'.repeat(300 + i)}`, accept: 'application/json',
      'user-agent': 'heldout-h2' }, undefined, { weight: 1 + i * 20, exclusive: i === 3 })));
  }
  const hang = session.request({ ':path': '/hang' });
  hang.on('error', () => {});
  hang.on('close', () => {});
  hang.end();
  await new Promise((r) => setTimeout(r, 100));
  for (const s of server._sessions ?? []) s.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
  await new Promise((r) => setTimeout(r, 200));
  session.destroy();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500);
});
server.on('session', (s) => { (server._sessions ??= []).push(s); });
