#!/bin/sh
# Clients of h2c-apache.pcap: curl and nghttp upgrading cleartext HTTP/1.1 to HTTP/2 (h2c)
# against Apache (apache-h2c.sh), and a POST whose upgrade Apache declines (it stays HTTP/1.1).
# Usage (root): h2c.sh PORT [large]
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
if [ "${2:-}" = large ]; then
# h2c-large.pcap: upgrades too large for the whole-request copy the http1 decoder used to hand
# over (6 KiB): a 7 KiB field, 12 KiB of fields over three lines (the head spans several reads),
# a 6 KiB query followed by a second stream, and nghttp -u with a 7 KiB field
v4=$(head -c 4000 /dev/zero | tr '\0' 'a')
v7=$(head -c 7000 /dev/zero | tr '\0' 'b')
q6=$(head -c 6000 /dev/zero | tr '\0' 'c')
# one URL per connection with the large fields: Apache answers a second stream repeating them
# with GOAWAY, and curl 7.88 then waits forever
curl -s -m 10 --http2 -H "x-big: $v7" -o /dev/null $B/index.html
curl -s -m 10 --http2 -H "x-a: $v4" -H "x-b: $v4" -H "x-c: $v4" -H 'x-small: 1' -o /dev/null "$B/big.txt?n=1"
curl -s -m 10 --http2 -o /dev/null "$B/index.html?q=$q6" -o /dev/null $B/big.txt
nghttp -nu -t 10 -H "x-big: $v7" $B/big.txt || true
else
# upgrade on the first request (stream 1), then streams 3 and 5 on the same connection
curl -s --http2 -H 'x-request-id: 7' -o /dev/null $B/index.html -o /dev/null $B/big.txt -o /dev/null "$B/missing?q=1"
curl -s --http2 -d 'a=1&b=2' -o /dev/null $B/index.html
nghttp -nu $B/index.html "$B/big.txt?x=y"
fi
kill $apid; wait $apid 2>/dev/null || true
rm -rf "$www" "$run"
