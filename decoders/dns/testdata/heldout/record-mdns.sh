#!/bin/bash
# Usage: record-mdns.sh OUT.pcapng, then: editcap -F pcap OUT.pcapng ../heldout-mdns.pcap and
# tshark -d udp.port==15356,dns -d udp.port==15358,dns -d tcp.port==15358,dns (fields of
# test/decoders/dns-oracle.ts tsharkTsv) > ../heldout-mdns.expected.tsv
# mdns.js (mDNS query, announcement, answer, goodbye; an unsolicited unicast response), then dig
# against dnsmasq on 127.0.0.1:15358: a TXT set too big for 512 bytes without EDNS (TC=1 over
# UDP, dig retries over TCP), and with +ignore (the truncated answer kept), NXDOMAIN, a CNAME chain.
set -u
OUT=$1
P=${P:-15358}
D=$(mktemp -d /tmp/hc-dns-XXXX)
TXT=()
for i in $(seq 1 12); do TXT+=(--txt-record=big.example.test,"record $i: $(printf 'x%.0s' $(seq 1 60))"); done
dnsmasq --keep-in-foreground --log-facility=- --conf-file=/dev/null --no-resolv --no-hosts \
  --port=$P --listen-address=127.0.0.1 --bind-interfaces --user=root --pid-file= \
  --address=/nx.test/ --host-record=www.example.test,10.1.2.4 \
  --cname=a1.example.test,www.example.test --cname=a2.example.test,a1.example.test \
  "${TXT[@]}" 2>$D/dnsmasq.log &
DM=$!
sleep 1
dumpcap -q -i lo -f "udp port 5353 or udp port 15356 or port $P" -w $D/cap.pcapng 2>$D/dumpcap.log &
TS=$!
for i in $(seq 1 100); do grep -q "Capturing on\|File:" $D/dumpcap.log && break; sleep 0.2; done
sleep 1
node "$(dirname "$0")"/mdns.js
dg() { dig @127.0.0.1 -p $P +time=2 +tries=1 "$@" >/dev/null 2>&1; }
dg +noedns big.example.test TXT
dg +noedns +ignore big.example.test TXT
dg missing.nx.test A
dg a2.example.test A
sleep 1
kill -INT $TS; wait $TS
kill $DM; wait $DM 2>/dev/null
cp $D/cap.pcapng "$OUT"
rm -rf $D
