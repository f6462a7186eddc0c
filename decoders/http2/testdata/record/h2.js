// Records Node http2 traffic (prior knowledge, cleartext) for the http2 decoder tests: several
// streams on one session, a POST echoed with trailers, a server push, a 500, a cancelled stream.
// Usage: node h2.js PORT
'use strict';
const http2 = require('http2');
const port = Number(process.argv[2] || 18083);

const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const p = headers[':path'];
  if (p === '/hello') { stream.respond({ ':status': 200, 'content-type': 'text/plain' }); stream.end('hello world'); return; }
  if (p.startsWith('/echo')) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      stream.respond({ ':status': 201, 'content-type': 'application/octet-stream' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': String(Buffer.concat(chunks).length) }));
      stream.end(Buffer.concat(chunks));
    });
    return;
  }
  if (p === '/push') {
    stream.pushStream({ ':path': '/style.css' }, (err, push) => {
      if (!err) { push.respond({ ':status': 200, 'content-type': 'text/css' }); push.end('body{}'); }
      stream.respond({ ':status': 200, 'content-type': 'text/html' });
      stream.end('<link rel=stylesheet href=/style.css>');
    });
    return;
  }
  if (p === '/fail') { stream.respond({ ':status': 500 }); stream.end('boom'); return; }
  if (p === '/slow') return; // never answers; the client cancels
  stream.respond({ ':status': 404 }); stream.end();
});

server.listen(port, '127.0.0.1', async () => {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const req = (headers, body) => new Promise((resolve) => {
    const r = session.request(headers);
    r.on('response', () => {});
    r.on('push', () => {});
    r.on('data', () => {});
    r.on('end', resolve);
    r.on('error', resolve);
    r.on('close', resolve);
    if (body) r.end(body); else r.end();
  });
  session.on('stream', (push) => { push.on('data', () => {}); });
  await req({ ':path': '/hello', 'user-agent': 'node-h2-test', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
  await Promise.all([req({ ':path': '/hello?x=1&y=2' }), req({ ':path': '/missing' })]);
  await req({ ':method': 'POST', ':path': '/echo', 'content-type': 'application/octet-stream' }, Buffer.alloc(40000, 1));
  await req({ ':path': '/push' });
  await req({ ':path': '/fail' });
  const slow = session.request({ ':path': '/slow' });
  slow.on('error', () => {});
  slow.end();
  await new Promise((r) => setTimeout(r, 100));
  slow.close(http2.constants.NGHTTP2_CANCEL);
  await new Promise((r) => setTimeout(r, 100));
  session.close(() => server.close(() => process.exit(0)));
});
