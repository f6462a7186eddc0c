#!/usr/bin/env python3
# Held-out HTTP/1 scenario: a raw-socket server on 127.0.0.1:PORT answering by path with what real
# servers send but our other captures lack, and raw clients (requests cut into single bytes,
# pipelined bodies, long headers, custom methods). Usage: heldout.py PORT (serves and runs clients)
import socket, sys, threading, time, gzip

PORT = int(sys.argv[1])

def recv_request(c, buf):
    """One request head (+ body by CL or chunked) from buf/c; returns (head, body, rest) or None."""
    while b'\r\n\r\n' not in buf:
        d = c.recv(65536)
        if not d:
            return None
        buf += d
    head, rest = buf.split(b'\r\n\r\n', 1)
    lines = head.split(b'\r\n')
    h = {}
    for l in lines[1:]:
        if b':' in l:
            k, v = l.split(b':', 1)
            h[k.strip().lower()] = v.strip()
    body = b''
    if h.get(b'transfer-encoding', b'').lower().endswith(b'chunked'):
        while True:
            while b'\r\n' not in rest:
                rest += c.recv(65536)
            size_line, rest = rest.split(b'\r\n', 1)
            n = int(size_line.split(b';')[0], 16)
            if n == 0:
                while not (rest.startswith(b'\r\n') or b'\r\n\r\n' in rest):
                    rest += c.recv(65536)
                rest = rest[2:] if rest.startswith(b'\r\n') else rest.split(b'\r\n\r\n', 1)[1]
                break
            while len(rest) < n + 2:
                rest += c.recv(65536)
            body += rest[:n]
            rest = rest[n + 2:]
    elif b'content-length' in h:
        n = int(h[b'content-length'].split(b',')[0])
        if n >= 100000:  # refused before the body is read (early-413)
            return lines[0], h, b'', b''
        if h.get(b'expect', b'').lower() == b'100-continue':
            c.sendall(b'HTTP/1.1 100 Continue\r\n\r\n')
        while len(rest) < n:
            rest += c.recv(65536)
        body, rest = rest[:n], rest[n:]
    return lines[0], h, body, rest

# Whole responses sent as they are: bodiless ones that declare a length, odd but valid heads.
CANNED = {
    b'304-cl': b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 1234\r\n\r\n',
    b'204-cl': b'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n',
    b'cl-list': b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5, 5\r\n\r\nfives',
    b'no-phrase': b'HTTP/1.1 599\r\nContent-Length: 3\r\n\r\nbad',
    b'lower': b'HTTP/1.1 200 OK\r\ncontent-type: text/css\r\ncontent-length: 3\r\nconnection: keep-alive\r\n\r\na{}',
    b'http10': b'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n1.0',
}

def send_slow(c, data, step):
    for i in range(0, len(data), step):
        c.sendall(data[i:i + step])
        time.sleep(0.002)

def handle(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b''
    try:
        while True:
            r = recv_request(c, buf)
            if r is None:
                return
            line, h, body, buf = r
            method, uri = line.split(b' ')[0], line.split(b' ')[1]
            p = uri.split(b'?')[0]
            if method == b'CONNECT':
                c.sendall(b'HTTP/1.1 200 Connection established\r\n\r\n')
                time.sleep(0.05)
                c.sendall(b'\x16\x03\x01\x00\x05hello')  # tunnel bytes: not HTTP
                continue
            if p.endswith(b'/slow-head'):
                send_slow(c, b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Pad: ' + b'p' * 200 + b'\r\nContent-Length: 11\r\n\r\nhello world', 7)
            elif p.endswith(b'/early-hints'):
                c.sendall(b'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n')
                time.sleep(0.01)
                c.sendall(b'HTTP/1.1 102 Processing\r\n\r\n')
                time.sleep(0.01)
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 4\r\n\r\nbody')
            elif p.endswith(b'/chunk-ext'):
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n'
                          b'5;name=value\r\n{"a":\r\nA ; ext\r\n1234567890\r\n3\r\n12}\r\n0;last\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n')
            elif p.endswith(b'/gzip-chunked'):
                z = gzip.compress(b'x' * 5000)
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n')
                for i in range(0, len(z), 10):
                    part = z[i:i + 10]
                    c.sendall(b'%x\r\n' % len(part) + part + b'\r\n')
                c.sendall(b'0\r\n\r\n')
            elif p.endswith(b'/big-headers'):
                cookies = b''.join(b'Set-Cookie: c%d=%s; Path=/\r\n' % (i, b'v' * 400) for i in range(40))
                c.sendall(b'HTTP/1.1 200 OK\r\n' + cookies + b'Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nok')
            elif p.endswith(b'/head-chunked') or method == b'HEAD':
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n')
            elif p.split(b'/')[-1] in CANNED:
                c.sendall(CANNED[p.split(b'/')[-1]])
            elif p.endswith(b'/until-close'):
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n')
                for i in range(5):
                    c.sendall(b'line %d\n' % i)
                    time.sleep(0.005)
                return
            elif p.endswith(b'/ws'):
                c.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n')
                c.sendall(b'\x81\x05hello')
                time.sleep(0.05)
                c.sendall(b'\x88\x00')
                return
            elif p.endswith(b'/early-413'):
                c.sendall(b'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
                time.sleep(0.2)
                return
            else:
                out = b'method=' + method + b' body=%d' % len(body)
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n' % len(out) + out)
    except (ConnectionError, OSError):
        pass
    finally:
        c.close()

def serve():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', PORT))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

def client(data, slow=0, wait=0.3):
    s = socket.create_connection(('127.0.0.1', PORT))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if slow:
        for i in range(0, len(data), slow):
            s.sendall(data[i:i + slow])
            time.sleep(0.002)
    else:
        s.sendall(data)
    time.sleep(wait)
    s.settimeout(0.5)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()

if __name__ == '__main__':
    threading.Thread(target=serve, daemon=True).start()
    time.sleep(0.3)
    H = b'Host: heldout.test\r\n'
    # a request head cut into single bytes, then one cut into 3-byte pieces with a body
    client(b'GET /slow-head?a=1 HTTP/1.1\r\n' + H + b'User-Agent: bytewise\r\nAccept: */*\r\n\r\n', slow=1)
    client(b'POST /form HTTP/1.1\r\n' + H + b'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 22\r\n\r\nname=value&other=thing', slow=3)
    # pipelined: two POSTs with bodies, a chunked PUT with extensions and trailers, a GET
    client(b'POST /p1 HTTP/1.1\r\n' + H + b'Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nabcd'
           b'POST /p2 HTTP/1.1\r\n' + H + b'Content-Length: 0\r\n\r\n'
           b'PUT /p3 HTTP/1.1\r\n' + H + b'Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n'
           b'GET /p4 HTTP/1.1\r\n' + H + b'\r\n')
    # 1xx before the final status; chunk extensions and trailers; gzip in 10-byte chunks
    client(b'GET /early-hints HTTP/1.1\r\n' + H + b'\r\nGET /chunk-ext HTTP/1.1\r\n' + H + b'\r\nGET /gzip-chunked HTTP/1.1\r\n' + H + b'Accept-Encoding: gzip\r\n\r\n')
    # big headers both ways: a 16 KiB cookie and an 8 KiB URI; 40 Set-Cookie lines back
    client(b'GET /big-headers?q=' + b'q' * 8000 + b' HTTP/1.1\r\n' + H + b'Cookie: ' + b'k=' + b'c' * 16000 + b'\r\n\r\n')
    # bodiless responses that declare a length or chunking
    client(b'HEAD /head HTTP/1.1\r\n' + H + b'\r\nGET /304-cl HTTP/1.1\r\n' + H + b'If-None-Match: "x"\r\n\r\nGET /204-cl HTTP/1.1\r\n' + H + b'\r\nGET /after HTTP/1.1\r\n' + H + b'\r\n')
    # odd but valid: list Content-Length, no reason phrase, lowercase names, HTTP/1.0 keep-alive
    client(b'GET /cl-list HTTP/1.1\r\n' + H + b'\r\nGET /no-phrase HTTP/1.1\r\n' + H + b'\r\nGET /lower HTTP/1.1\r\nhost: heldout.test\r\n\r\nGET /http10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /end HTTP/1.1\r\n' + H + b'\r\n')
    # custom and rare methods, percent-encoded and raw UTF-8 in the target
    client(b'PROPFIND /dav/%E2%82%AC/ HTTP/1.1\r\n' + H + b'Depth: 1\r\nContent-Type: application/xml\r\nContent-Length: 5\r\n\r\n<a/>\n'
           b'TRACE /t HTTP/1.1\r\n' + H + b'\r\nOPTIONS * HTTP/1.1\r\n' + H + b'\r\nPURGE /cache/x HTTP/1.1\r\n' + H + b'\r\n'
           b'GET /caf\xc3\xa9?x=\xc3\xa9 HTTP/1.1\r\n' + H + b'\r\n')
    # body until close; Content-Length and Transfer-Encoding both sent (chunked wins, RFC 9112 6.3)
    client(b'GET /until-close HTTP/1.1\r\n' + H + b'\r\n')
    client(b'POST /both HTTP/1.1\r\n' + H + b'Content-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n')
    # websocket upgrade with frames; CONNECT tunnel; an upload refused before it is sent
    client(b'GET /ws HTTP/1.1\r\n' + H + b'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85\x00\x00\x00\x00hello')
    client(b'CONNECT heldout.test:443 HTTP/1.1\r\nHost: heldout.test:443\r\n\r\n\x16\x03\x01\x00\x05world')
    client(b'POST /early-413 HTTP/1.1\r\n' + H + b'Content-Length: 100000\r\n\r\n' + b'z' * 2000, wait=0.4)
    time.sleep(0.3)
