#!/bin/sh
# Clients of h2c-apache.pcap: curl and nghttp upgrading cleartext HTTP/1.1 to HTTP/2 (h2c)
# against Apache (apache-h2c.sh), and a POST whose upgrade Apache declines (it stays HTTP/1.1).
# Usage (root): h2c.sh PORT
set -eu
port=$1
here=$(cd "$(dirname "$0")" && pwd)
www=$(mktemp -d); run=$(mktemp -d)
chmod 755 "$www"
printf 'hello from apache\n' > "$www/index.html"
head -c 20000 /dev/zero | tr '\0' 'x' > "$www/big.txt"
chmod 644 "$www"/*
"$here/apache-h2c.sh" "$www" "$run" "$port" > "$run/out" &
apid=$!
i=0; while ! grep -q listening "$run/out" && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
B=http://127.0.0.1:$port
# upgrade on the first request (stream 1), then streams 3 and 5 on the same connection
curl -s --http2 -H 'x-request-id: 7' -o /dev/null $B/index.html -o /dev/null $B/big.txt -o /dev/null "$B/missing?q=1"
curl -s --http2 -d 'a=1&b=2' -o /dev/null $B/index.html
nghttp -nu $B/index.html "$B/big.txt?x=y"
kill $apid; wait $apid 2>/dev/null || true
rm -rf "$www" "$run"
