P=19104
send(){ python3 -c "
import socket,sys,time
s=socket.create_connection(('127.0.0.1',$P)); s.sendall(sys.argv[1].encode().decode('unicode_escape').encode('latin1')); time.sleep(0.3); s.settimeout(0.5)
try:
  while s.recv(65536): pass
except Exception: pass
s.close()" "$1"; }
B=http://127.0.0.1:19102
curl -s -o /dev/null -o /dev/null -o /dev/null -o /dev/null $B/204 $B/304 $B/trailers $B/nope?x=1
curl -s -o /dev/null -I $B/head
curl -s -o /dev/null -H 'Expect: 100-continue' --data-binary @/tmp/wk/small.bin $B/upload
curl -s -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary @/tmp/wk/small.bin $B/chunkup
wget -q -O /dev/null $B/trailers
python3 -c "
import http.client, urllib.request
c=http.client.HTTPConnection('127.0.0.1',19102)
for p in ['/204','/304']:
  c.request('GET',p); c.getresponse().read()
c.request('HEAD','/h'); c.getresponse().read()
c.request('POST','/p', body=b'abc'*100, headers={'Content-Type':'x/y'}); c.getresponse().read()
urllib.request.urlopen('http://127.0.0.1:19102/trailers').read()
"
curl -s -o /dev/null -o /dev/null -g 'http://[::1]:19103/trailers' 'http://[::1]:19103/304'
curl -s -o /dev/null http://127.0.0.1:19101/a.txt
send 'GET /early HTTP/1.1\r\nHost: a\r\n\r\nGET /nophrase HTTP/1.1\r\nHost: a\r\n\r\nGET /fold HTTP/1.1\r\nHost: a\r\n\r\nGET /lf HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n'
send 'GET http://example.com:8080/abs/path?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET /close10 HTTP/1.0\r\n\r\n'
send 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'
curl -s -o /dev/null -x http://127.0.0.1:19104 http://example.org/via/proxy?x=y
send 'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: a\r\n\r\n'
