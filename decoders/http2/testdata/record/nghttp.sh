#!/bin/sh
# nghttpd (cleartext) with nghttp and curl clients: prior knowledge (PORT) or h2c Upgrade (nghttp -u).
# Usage: nghttp.sh PORT prior|upgrade|curl
set -eu
port=$1; mode=$2
www=$(mktemp -d)
printf 'hello from nghttpd\n' > "$www/index.html"
head -c 30000 /dev/zero | tr '\0' 'x' > "$www/big.txt"
printf 'User-agent: *\n' > "$www/robots.txt"
nghttpd --no-tls -a 127.0.0.1 -d "$www" "$port" >/dev/null 2>&1 &
spid=$!
sleep 0.5
case $mode in
  prior) nghttp -n -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' \
           "http://127.0.0.1:$port/index.html" "http://127.0.0.1:$port/big.txt" "http://127.0.0.1:$port/missing?q=1" >/dev/null
         printf 'posted body' > "$www/post.txt"; nghttp -n -d "$www/post.txt" "http://127.0.0.1:$port/robots.txt" >/dev/null ;;
  curl) curl -s --http2-prior-knowledge -H 'x-request-id: 42' -o /dev/null "http://127.0.0.1:$port/index.html" \
          -o /dev/null "http://127.0.0.1:$port/robots.txt" -o /dev/null "http://127.0.0.1:$port/nope?a=b" || true ;;
esac
kill $spid; wait $spid 2>/dev/null || true
rm -rf "$www"
