import sys, http.server, socketserver, socket
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        if self.headers.get('Transfer-Encoding','').lower() == 'chunked':
            data = b''
            while True:
                line = self.rfile.readline(); sz = int(line.split(b';')[0], 16)
                if sz == 0:
                    while self.rfile.readline() not in (b'\r\n', b''): pass
                    break
                data += self.rfile.read(sz); self.rfile.readline()
            return data
        return self.rfile.read(n)
    def do_HEAD(self):
        self.send_response(200); self.send_header('Content-Length', '1000'); self.send_header('Content-Type','text/plain'); self.end_headers()
    def do_POST(self):
        b = self.body()
        self.send_response(201); self.send_header('Content-Length', str(len(str(len(b))))); self.end_headers(); self.wfile.write(str(len(b)).encode())
    do_PUT = do_POST
    def do_GET(self):
        p = self.path
        if p.startswith('/204'):
            self.send_response(204); self.end_headers()
        elif p.startswith('/304'):
            self.send_response(304); self.send_header('ETag', '"x"'); self.send_header('Content-Length', '50'); self.end_headers()
        elif p.startswith('/trailers'):
            self.send_response(200); self.send_header('Transfer-Encoding', 'chunked'); self.send_header('Trailer', 'X-Checksum'); self.end_headers()
            self.wfile.write(b'5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n')
        elif p.startswith('/longhdr'):
            self.send_response(200)
            for i in range(40): self.send_header('X-Long-%d' % i, 'v' * 900)
            self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
        elif p.startswith('/close'):
            self.send_response(200); self.send_header('Connection', 'close'); self.send_header('Content-Type', 'text/plain'); self.end_headers()
            self.wfile.write(b'x' * 70000); self.close_connection = True
        elif p.startswith('/big'):
            self.send_response(200); self.send_header('Content-Length', '200000'); self.end_headers(); self.wfile.write(b'y' * 200000)
        else:
            self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers()
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
S.address_family = fam
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
