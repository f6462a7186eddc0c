#!/bin/sh
# Clients of nghttpd-options.pcap. Server: nghttpd --no-tls -d DIR -b 32 --encoder-header-table-size=256 -p /index.html=/a.css,/mid.bin 19212
# (DIR: index.html, a.css, mid.bin 5000 B, big.bin 30000 B); small.bin is any 3000-byte file.
B=http://127.0.0.1:19212
nghttp -n -m 6 $B/index.html
nghttp -n -b 100 -H 'x-custom: v1' -H 'x-other: a,b' $B/mid.bin $B/a.css $B/missing
nghttp -n -d ${SMALL:-small.bin} -H 'content-type: application/octet-stream' $B/index.html
nghttp -n -w 12 -W 14 $B/big.bin
curl -s -o /dev/null -o /dev/null --http2-prior-knowledge -H 'x-a: 1' $B/index.html $B/mid.bin
