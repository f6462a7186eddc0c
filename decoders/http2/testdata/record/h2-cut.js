// Records h2-cut.pcap: HTTP/2 streams whose response began and whose connection closed before its
// end. An @grpc/grpc-js server streams a message every 50 ms; a grpc-js client in its own process
// exits after 3 messages (its socket closes, no RST_STREAM), and curl --http2-prior-knowledge posts
// a gRPC-framed request to the same method and gives up at --max-time 0.6 (closes the connection).
// Then one call that completes, on a new connection. Usage: node h2-cut.js PORT
'use strict';
const path = require('path');
const { spawn } = require('child_process');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const port = Number(process.argv[2] || 19530);
const def = loader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true });
const Echo = grpc.loadPackageDefinition(def).telegen.test.Echo;

if (process.argv[3] === 'client') {
  // the client that goes away mid-stream
  const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  let got = 0;
  client.ServerStream({ text: 'watch', n: 40 }).on('data', () => { if (++got === 3) process.exit(0); });
} else {
  const server = new grpc.Server();
  server.addService(Echo.service, {
    ServerStream: (call) => {
      let i = 0;
      const t = setInterval(() => {
        if (call.cancelled || i >= call.request.n) { clearInterval(t); if (!call.cancelled) call.end(); return; }
        call.write({ text: 'item ' + i, n: i++ });
      }, 50);
      call.on('cancelled', () => clearInterval(t));
    },
  });
  // the server runs in this process: its clients are waited for without blocking it
  const run = (cmd, args, input) => new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'inherit', 'inherit'], cwd: __dirname });
    if (input) p.stdin.end(input);
    p.on('exit', resolve);
  });
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), async () => {
    await run(process.execPath, [__filename, String(port), 'client']);
    // one gRPC message: field n (3) = 40
    const body = Buffer.from([0, 0, 0, 0, 2, 0x18, 40]);
    await run('curl', ['-s', '-o', '/dev/null', '--http2-prior-knowledge', '--max-time', '0.6', '-H', 'content-type: application/grpc', '-H', 'te: trailers',
      '--data-binary', '@-', `http://127.0.0.1:${port}/telegen.test.Echo/ServerStream`], body);
    const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const call = client.ServerStream({ text: 'short', n: 2 });
    call.on('data', () => {});
    call.on('end', () => { client.close(); server.tryShutdown(() => process.exit(0)); });
  });
}
