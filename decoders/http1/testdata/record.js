#!/usr/bin/env node
// Records the local-*.pcap captures in this folder from REAL clients and servers on 127.0.0.1
// (Node http + curl + fetch + raw sockets; python3 -m http.server + curl), then writes tshark's
// decoding beside each as <name>.expected.tsv (same columns as ../../../../shared/corpus).
// Needs root (tshark -i lo). Usage: node decoders/http1/testdata/record.js
'use strict';
const http = require('http');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

const here = __dirname;
const NODE_PORT = 18580;
const PY_PORT = 18581;
const FIELDS = ['frame.number', 'tcp.stream', 'http.request.method', 'http.request.uri', 'http.request.version',
  'http.response.version', 'http.response.code', 'http.response.phrase', 'http.host', 'http.content_type',
  'http.content_length_header', 'http.transfer_encoding', 'http.content_encoding', 'http.upgrade'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function capture(name, port, run) {
  const out = path.join(here, `${name}.pcap`);
  const ts = spawn('tshark', ['-i', 'lo', '-w', out, '-f', `tcp port ${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise((resolve) => ts.stderr.on('data', (d) => { if (String(d).includes('Capturing on')) resolve(); }));
  await sleep(300);
  try { await run(); } finally {
    await sleep(500);
    ts.kill('SIGINT');
    await new Promise((r) => ts.on('exit', r));
  }
  execFileSync('chmod', ['644', out]);
  const tsv = execFileSync('tshark', ['-r', out, '-d', `tcp.port==${port},http`, '-Y', 'http', '-T', 'fields',
    '-E', 'header=y', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=|', '-E', 'quote=n',
    ...FIELDS.flatMap((f) => ['-e', f])], { stdio: ['ignore', 'pipe', 'ignore'] });
  fs.writeFileSync(path.join(here, `${name}.expected.tsv`), tsv);
}

// async: the Node server under test runs in this same process
const execFileP = require('util').promisify(require('child_process').execFile);
function curl(...args) {
  return execFileP('curl', ['-s', '-o', '/dev/null', ...args]);
}

function raw(port, text, waitMs = 400) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    const got = [];
    s.on('data', (d) => got.push(d));
    s.on('error', reject);
    setTimeout(() => { s.end(); resolve(Buffer.concat(got)); }, waitMs);
  });
}

async function nodeServer() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const u = new URL(req.url, 'http://x');
      switch (u.pathname) {
        case '/hello': res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('hello world\n'); break;
        case '/chunked':
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.write('{"part":1,');
          setTimeout(() => { res.write('"part2":2'); res.end('}'); }, 20);
          break;
        case '/cached':
          if (req.headers['if-none-match'] === '"v1"') { res.writeHead(304, { ETag: '"v1"' }); res.end(); }
          else { res.writeHead(200, { ETag: '"v1"', 'Content-Type': 'text/plain' }); res.end('cached body'); }
          break;
        case '/boom': res.writeHead(500, { 'Content-Type': 'text/plain' }); res.end('internal error'); break;
        case '/upload': res.writeHead(201, { 'Content-Type': 'application/json' }); res.end(JSON.stringify({ got: body.length })); break;
        case '/gzip': res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Encoding': 'gzip' }); res.end(require('zlib').gzipSync('zipped')); break;
        default: res.writeHead(404, { 'Content-Type': 'text/plain' }); res.end('not found');
      }
    });
  });
  server.on('upgrade', (req, socket) => {
    if (String(req.headers.upgrade).toLowerCase() === 'websocket') {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
      socket.write(Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f])); // text frame "hello"
      setTimeout(() => socket.end(Buffer.from([0x88, 0x00])), 50);
    } else {
      // an upgrade this server does not speak (h2c): answer in HTTP/1.1
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nno switch');
    }
  });
  await new Promise((r) => server.listen(NODE_PORT, '127.0.0.1', r));
  const base = `http://127.0.0.1:${NODE_PORT}`;
  try {
    await capture('local-node', NODE_PORT, async () => {
      // keep-alive: several requests on one connection
      await curl(`${base}/hello?lang=en`, `${base}/chunked`, `${base}/missing`, `${base}/boom`, `-H`, 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      await curl('-I', `${base}/hello`);
      await curl('-H', 'If-None-Match: "v1"', `${base}/cached`);
      await curl('--compressed', `${base}/gzip`);
      // 100-continue with a 60 KB body
      const f = path.join(os.tmpdir(), 'telegen-http1-body.bin');
      fs.writeFileSync(f, Buffer.alloc(60000, 0x42));
      await curl('-H', 'Expect: 100-continue', '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${f}`, `${base}/upload`);
      fs.unlinkSync(f);
      // h2c upgrade attempt the server declines
      await curl('--http2', `${base}/h2c`);
      // Node fetch (undici): a chunked request body
      const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('abc')); c.enqueue(new TextEncoder().encode('defgh')); c.close(); } });
      await (await fetch(`${base}/upload`, { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'text/plain' } })).text();
      await (await fetch(`${base}/hello`)).text();
      // pipelining: three requests in one write
      await raw(NODE_PORT, 'GET /hello HTTP/1.1\r\nHost: pipe.local\r\n\r\n' +
        'GET /missing HTTP/1.1\r\nHost: pipe.local\r\n\r\n' +
        'POST /upload HTTP/1.1\r\nHost: pipe.local\r\nContent-Length: 4\r\n\r\nbody');
      // websocket handshake and a frame
      await raw(NODE_PORT, 'GET /ws?room=1 HTTP/1.1\r\nHost: ws.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    });
  } finally {
    server.close();
  }
}

async function pythonServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-http1-py-'));
  fs.writeFileSync(path.join(dir, 'index.txt'), 'python served this\n');
  const py = spawn('python3', ['-m', 'http.server', String(PY_PORT), '--bind', '127.0.0.1'], { cwd: dir, stdio: 'ignore' });
  try {
    for (let i = 0; i < 50; i++) {
      try { await curl(`http://127.0.0.1:${PY_PORT}/index.txt`); break; } catch { await sleep(100); }
    }
    await capture('local-python', PY_PORT, async () => {
      await curl(`http://127.0.0.1:${PY_PORT}/index.txt`);
      await curl(`http://127.0.0.1:${PY_PORT}/nope.html`);
      await curl('-I', `http://127.0.0.1:${PY_PORT}/index.txt`);
      await curl(`http://127.0.0.1:${PY_PORT}/`);
    });
  } finally {
    py.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  await nodeServer();
  await pythonServer();
})().catch((e) => { console.error(e); process.exit(1); });
