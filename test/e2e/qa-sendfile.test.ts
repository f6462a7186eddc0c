// Response bodies sent with sendfile(2) through the live agent: nginx (sendfile on) and Go's
// http.FileServer/ServeContent (io.Copy from an *os.File to a *net.TCPConn). Neither body passes
// through user memory, so before the socket tracer hooked sendfile64 (and splice) the server side
// saw heads without bodies: a keep-alive connection's last response stayed telegen.unknown with
// body size 0, a Go response (head + 512 bytes by write, the rest by sendfile) waited for bytes
// that never came and took the next response's head as body, and every span ended at its head.
// tshark on a capture of the same traffic is the oracle for the sizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, execFileSync, ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import { requireBpf, startAgent, waitFor, freePort, FlatSpan } from '../helpers/agent';
import { startLoCapture, stopLoCapture, Capture } from '../helpers/capture';
import { startNginx } from '../helpers/nginx';

const SERVER = 2;
const CLIENT = 3;

const FILES: Record<string, number> = { 'empty.txt': 0, '10k.bin': 10_240, '3m.bin': 3_000_000 };

// A file server and a handler that sends its head, then makes a marker call, then the file:
// the response's span must end after the marker call (its body went out after it).
const GO_SERVER = `package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	dir, port, markPort := os.Args[1], os.Args[2], os.Args[3]
	go http.ListenAndServe("127.0.0.1:"+markPort, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "mark")
	}))
	mux := http.NewServeMux()
	mux.Handle("/files/", http.StripPrefix("/files/", http.FileServer(http.Dir(dir))))
	mux.HandleFunc("/late/", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(filepath.Join(dir, filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		resp, err := http.Get("http://127.0.0.1:" + markPort + "/mark?" + r.URL.RawQuery)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		io.Copy(w, f) // response.ReadFrom: the header is out, so the whole file goes by sendfile
	})
	http.ListenAndServe("127.0.0.1:"+port, mux)
}
`;

// splice(2) both ways, as a proxy or server that moves bodies through a pipe does: the head is
// read with recv (its end found with MSG_PEEK) and sent with send; a request body is spliced from
// the socket into a pipe (to /dev/null), a file spliced through a pipe into the socket.
const PY_SPLICE = `import os, socket, sys, time
root, port = sys.argv[1], int(sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(('127.0.0.1', port))
ls.listen(8)
null = os.open('/dev/null', os.O_WRONLY)
def splice_all(src, dst, n):
    r, w = os.pipe()
    try:
        while n:
            k = os.splice(src, w, min(n, 65536))
            if not k:
                raise EOFError
            n -= k
            while k:
                k -= os.splice(r, dst, k)
    finally:
        os.close(r)
        os.close(w)
def recv_exact(c, n):
    b = b''
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
while True:
    c, _ = ls.accept()
    try:
        while True:
            p = c.recv(65536, socket.MSG_PEEK)
            if not p:
                break
            end = p.find(b'\\r\\n\\r\\n')
            if end < 0:
                time.sleep(0.001)
                continue
            head = recv_exact(c, end + 4).decode('latin1').split('\\r\\n')
            method, target = head[0].split(' ')[:2]
            fields = {l.split(':', 1)[0].lower(): l.split(':', 1)[1].strip() for l in head[1:] if ':' in l}
            if method == 'POST':
                splice_all(c.fileno(), null, int(fields['content-length']))
                c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')
                continue
            f = os.path.join(root, os.path.basename(target.split('?')[0]))
            size = os.path.getsize(f)
            c.sendall(('HTTP/1.1 200 OK\\r\\nContent-Type: application/octet-stream\\r\\nContent-Length: %d\\r\\n\\r\\n' % size).encode())
            if size:
                fd = os.open(f, os.O_RDONLY)
                try:
                    splice_all(fd, c.fileno(), size)
                finally:
                    os.close(fd)
    except (EOFError, ConnectionError):
        pass
    c.close()
`;

interface Wire { uri: string; status: number; contentLength: number; wireBytes: number }

/** The HTTP responses tshark reassembles from the capture on `port`, in order. */
function tsharkResponses(pcap: string, port: number): Wire[] {
  const out = execFileSync('tshark', ['-r', pcap, '-d', `tcp.port==${port},http`, '-o', 'http.desegment_body:TRUE', '-o', 'tcp.desegment_tcp_streams:TRUE',
    '-Y', `http.response && tcp.srcport == ${port}`, '-T', 'fields', '-E', 'separator=|',
    '-e', 'http.response_for.uri', '-e', 'http.response.code', '-e', 'http.content_length', '-e', 'tcp.reassembled.length', '-e', 'tcp.len'],
  { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out.trim().split('\n').filter(Boolean).map((l) => {
    const [uri, code, cl, reasm, tcpLen] = l.split('|');
    return { uri: new URL(uri).pathname + new URL(uri).search, status: Number(code), contentLength: Number(cl || 0), wireBytes: Number(reasm || tcpLen) };
  });
}

/** One curl invocation, one connection (curl reuses it across --next): per request its number,
 *  status, num_connects (1, then 0), bytes downloaded and uploaded. */
function curlChain(base: string, reqs: Array<[string, string, ...string[]]>): number[][] {
  const args = ['-sS'];
  reqs.forEach(([n, p, ...extra], i) => {
    if (i) args.push('--next');
    args.push(...extra, '-w', `${n.slice(2)} %{http_code} %{num_connects} %{size_download} %{size_upload}\\n`, '-o', '/dev/null', `${base}${p}?${n}`);
  });
  return execFileSync('curl', args, { encoding: 'utf8' }).trim().split('\n').map((l) => l.split(' ').map(Number));
}

test('sendfile and splice bodies (nginx sendfile on, Go FileServer/ServeContent, a server splicing through a pipe) over keep-alive: one server span per request with its status and exact body sizes, ending after its body; sizes as tshark reads the wire', { timeout: 240_000 }, async (t) => {
  if (!requireBpf(t)) return;
  if (spawnSync('sh', ['-c', 'command -v nginx && command -v go && command -v dumpcap && command -v tshark']).status !== 0) { t.skip('nginx, go, dumpcap or tshark not installed'); return; }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-qa-sendfile-'));
  fs.chmodSync(dir, 0o755); // nginx's worker runs as nobody
  const www = path.join(dir, 'www');
  fs.mkdirSync(www, { mode: 0o755 });
  for (const [f, size] of Object.entries(FILES)) fs.writeFileSync(path.join(www, f), randomBytes(size));
  const upload = (n: number) => { const f = path.join(dir, `up${n}.bin`); fs.writeFileSync(f, randomBytes(n)); return f; };

  // Go: stdlib only, built here (no module download).
  const gosrc = path.join(dir, 'gosrv');
  fs.mkdirSync(gosrc);
  fs.writeFileSync(path.join(gosrc, 'main.go'), GO_SERVER);
  fs.writeFileSync(path.join(gosrc, 'go.mod'), 'module gosrv\n\ngo 1.19\n');
  const goEnv = { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off', GOCACHE: path.join(dir, 'gocache'), HOME: process.env.HOME ?? dir, CGO_ENABLED: '0' };
  execFileSync('go', ['build', '-o', path.join(dir, 'gosrv-bin'), '.'], { cwd: gosrc, env: goEnv, stdio: 'pipe' });
  fs.writeFileSync(path.join(dir, 'splice_server.py'), PY_SPLICE);

  const [nport, gport, mport, sport] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const procs: ChildProcess[] = [];
  procs.push(startNginx(dir, 'text/plain txt; application/octet-stream bin;', `server { listen 127.0.0.1:${nport}; root ${www}; }`));
  procs.push(spawn(path.join(dir, 'gosrv-bin'), [www, String(gport), String(mport)], { stdio: 'ignore' }));
  procs.push(spawn('python3', [path.join(dir, 'splice_server.py'), www, String(sport)], { stdio: 'ignore' }));
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  let cap: Capture | undefined;
  try {
    for (const p of [nport, gport, sport]) await waitFor(() => spawnSync('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${p}/empty.txt`]).status === 0, 10_000);
    const ports = [nport, gport, sport];
    cap = await startLoCapture(path.join(dir, 'lo.pcapng'), ports.map((p) => `tcp port ${p}`).join(' or '), nport);
    agent = await startAgent();
    type Req = { n: string; port: number; path: string; extra?: string[]; resp: number; req?: number };
    const up1m = upload(1_000_000), up10k = upload(10_240);
    const post = (f: string) => ['-H', 'Expect:', '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${f}`];
    const conns: Req[][] = [
      // nginx: six requests on one connection, the last a 3 MB file; then a single 10 KB file
      [['n=1', '/empty.txt'], ['n=2', '/10k.bin'], ['n=3', '/3m.bin'], ['n=4', '/10k.bin'], ['n=5', '/empty.txt'], ['n=6', '/3m.bin']].map(([n, p]) => ({ n, port: nport, path: p, resp: FILES[p.slice(1)] })),
      [{ n: 'n=7', port: nport, path: '/10k.bin', resp: 10_240 }],
      // Go: FileServer (head and 512 bytes by write, the rest by sendfile) and the late handler
      [['g=1', '/files/10k.bin'], ['g=2', '/files/3m.bin'], ['g=3', '/late/3m.bin'], ['g=4', '/files/empty.txt'], ['g=5', '/files/10k.bin'], ['g=6', '/late/10k.bin']].map(([n, p]) => ({ n, port: gport, path: p, resp: FILES[path.basename(p)] })),
      // splice: files out of the socket, uploads into a pipe
      [{ n: 's=1', port: sport, path: '/10k.bin', resp: 10_240 }, { n: 's=2', port: sport, path: '/upload', extra: post(up1m), resp: 2, req: 1_000_000 },
        { n: 's=3', port: sport, path: '/3m.bin', resp: 3_000_000 }, { n: 's=4', port: sport, path: '/upload', extra: post(up10k), resp: 2, req: 10_240 },
        { n: 's=5', port: sport, path: '/10k.bin', resp: 10_240 }],
    ];
    for (const c of conns) {
      const out = curlChain(`http://127.0.0.1:${c[0].port}`, c.map((r) => [r.n, r.path, ...(r.extra ?? [])]));
      assert.deepEqual(out.map((r) => r.slice(1)), c.map((r, i) => [200, i ? 0 : 1, r.resp, r.req ?? 0]), `${c[0].n}…: curl got every response whole on one connection`);
    }
    const reqs = conns.flat();

    const key = (s: FlatSpan) => String(s.attributes['url.query']);
    const wanted = new Set(reqs.map((r) => r.n));
    const mine = () => agent!.spans().filter((s) => s.kind === SERVER && ports.includes(Number(s.attributes['server.port'])) && wanted.has(key(s)));
    const marks = () => agent!.spans().filter((s) => s.kind === CLIENT && s.attributes['url.path'] === '/mark');
    await waitFor(() => mine().length >= reqs.length && marks().length >= 2, 30_000).catch(() => undefined);
    await stopLoCapture(cap);
    assert.equal(await agent.stop(), 0);
    const spans = mine();
    const brief = spans.map((s) => `${key(s)} ${s.attributes['process.executable.name']} ${s.attributes['http.request.method']} ${s.attributes['url.path']} ${s.attributes['http.response.status_code']} req.body=${s.attributes['http.request.body.size']} body=${s.attributes['http.response.body.size']} size=${s.attributes['telegen.response.size']} unknown=${s.attributes['telegen.unknown']} dur=${(s.end - s.start) / 1000n}us`).join('\n');
    for (const l of brief.split('\n')) t.diagnostic(l);

    const pcap = path.join(dir, 'lo.pcapng');
    const wire = ports.flatMap((p) => tsharkResponses(pcap, p));
    for (const r of reqs) {
      const w = wire.filter((x) => x.uri === `${r.path}?${r.n}`);
      assert.equal(w.length, 1, `${r.n}: tshark sees one response\n${JSON.stringify(wire)}`);
      assert.equal(w[0].contentLength, r.resp, `${r.n}: tshark's Content-Length`);
      const s = spans.filter((x) => key(x) === r.n);
      assert.equal(s.length, 1, `${r.n} ${r.path}: one server span\n${brief}`);
      const a = s[0].attributes;
      assert.equal(a['http.response.status_code'], 200, `${r.n}\n${brief}`);
      assert.equal(a['url.path'], r.path, `${r.n}\n${brief}`);
      assert.equal(a['telegen.unknown'], undefined, `${r.n} ${r.path}: the body is known\n${brief}`);
      assert.equal(a['http.response.body.size'], w[0].contentLength, `${r.n} ${r.path}: body size as on the wire\n${brief}`);
      assert.equal(a['telegen.response.size'], w[0].wireBytes, `${r.n} ${r.path}: response wire bytes as tshark reassembled them\n${brief}`);
      if (r.req !== undefined) assert.equal(a['http.request.body.size'], r.req, `${r.n}: request body spliced from the socket\n${brief}`);
    }
    // The late handler made its marker call between its head and its body: the span of a response
    // whose end was its head would end before the marker call did.
    for (const n of ['g=3', 'g=6']) {
      const s = spans.find((x) => key(x) === n)!;
      const m = marks().filter((x) => x.attributes['url.query'] === n);
      assert.equal(m.length, 1, `${n}: one marker call`);
      t.diagnostic(`${n}: the marker call ended ${(s.end - m[0].end) / 1000n} us before the span`);
      assert.ok(s.end >= m[0].end, `${n}: the response span ends after the marker call made before its body (span end ${s.end}, marker end ${m[0].end}, ${(m[0].end - s.end) / 1000n} us later)`);
    }
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    if (cap && cap.proc.exitCode === null) cap.proc.kill('SIGKILL');
    if (agent && agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
