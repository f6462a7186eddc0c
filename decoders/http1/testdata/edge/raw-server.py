import socket, threading, time, sys
# raw server: answers canned responses per request line
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', port)); s.listen(16)
    while True:
        c, _ = s.accept(); threading.Thread(target=handle, args=(c,), daemon=True).start()
def handle(c):
    buf = b''
    while True:
        while b'\r\n\r\n' not in buf:
            d = c.recv(65536)
            if not d: c.close(); return
            buf += d
        head, buf = buf.split(b'\r\n\r\n', 1)
        line = head.split(b'\r\n')[0].decode()
        m, u = line.split(' ')[0], line.split(' ')[1]
        cl = 0
        for h in head.split(b'\r\n')[1:]:
            if h.lower().startswith(b'content-length:'): cl = int(h.split(b':')[1])
        while len(buf) < cl: buf += c.recv(65536)
        buf = buf[cl:]
        if m == 'CONNECT':
            c.sendall(b'HTTP/1.1 200 Connection established\r\n\r\n'); time.sleep(0.05); c.sendall(b'\x16\x03\x01\x00\x05hello'); time.sleep(0.05); c.close(); return
        if u.endswith('/early'):
            c.sendall(b'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'); time.sleep(0.01)
            c.sendall(b'HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc')
        elif u.endswith('/nophrase'):
            c.sendall(b'HTTP/1.1 201\r\nContent-Length: 0\r\n\r\n')
        elif m == 'HEAD':
            c.sendall(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n')
        elif u.endswith('/fold'):
            c.sendall(b'HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Type: text/plain;\r\n charset=utf-8\r\nContent-Length: 2\r\n\r\nok')
        elif u.endswith('/lf'):
            c.sendall(b'HTTP/1.1 200 OK\nContent-Length: 2\nContent-Type: text/x\n\nok')
        elif u.endswith('/both'):
            c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
        elif u.endswith('/te-then-cl'):
            c.sendall(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n')
        elif u.endswith('/close10'):
            c.sendall(b'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n' + b'z' * 5000); c.close(); return
        else:
            c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
serve(int(sys.argv[1]))
