#!/bin/sh
# Clients of heldout-curl.pcap. Server: nghttpd --no-tls -d www 19240 (www: index.html, big.bin 50 KB).
B=http://127.0.0.1:19240  # up.bin: 20000 zero bytes; big.bin: 20000 random bytes
curl -s -o /dev/null --http2-prior-knowledge -H 'Expect: 100-continue' --data-binary @up.bin $B/index.html
curl -s -o /dev/null --http2-prior-knowledge -I $B/big.bin
curl -s -o /dev/null --http2-prior-knowledge --limit-rate 20k --max-time 1 $B/big.bin
curl -s -o /dev/null -o /dev/null -o /dev/null --http2-prior-knowledge -H 'x-long: '$(head -c 6000 /dev/zero | tr '\0' a) $B/index.html $B/missing $B/big.bin
nghttp -n -H ':method: DELETE' $B/index.html
nghttp -n -H 'x-a: 1' -H 'x-a: 2' -H 'X-Mixed-Case: v' $B/index.html
