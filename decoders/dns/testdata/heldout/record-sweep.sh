#!/bin/bash
# Usage: record-sweep.sh OUT.pcapng, then: editcap -F pcap OUT.pcapng heldout-sweep.pcap and tshark -d udp.port==15363,dns -d tcp.port==15363,dns (fields of test/decoders/dns-oracle.ts tsharkTsv)
# Shapes the other captures lack, against dnsmasq on 127.0.0.1:$P: TC over UDP then dig's TCP retry,
# TXT answers near 4 KiB over EDNS UDP and TCP, EDNS cookies and client subnet, REFUSED (no upstream)
# and SERVFAIL (an upstream that does not answer), NXDOMAIN, CNAME chains, and 64 queries in flight on
# one UDP socket whose ids repeat (each id used for 4 different names).
set -u
OUT=$1
P=${P:-15363}
D=$(mktemp -d /tmp/hc-dns-XXXX)
T100=$(printf 'x%.0s' $(seq 1 200))
BIG=""; for i in $(seq 1 19); do BIG="$BIG,\"$i$T100\""; done   # 19 strings of ~201 bytes: ~3.9 KiB of RDATA
MID=""; for i in $(seq 1 4); do MID="$MID,\"$i$T100\""; done    # ~800 bytes: past 512, under 1232
dnsmasq --keep-in-foreground --log-facility=- --conf-file=/dev/null --no-resolv --no-hosts \
  --port=$P --listen-address=127.0.0.1 --bind-interfaces --user=root --pid-file= --edns-packet-max=4096 \
  --address=/nx.test/ --host-record=www.sweep.test,10.9.0.1,2001:db8::9:1 \
  --cname=c1.sweep.test,www.sweep.test --cname=c2.sweep.test,c1.sweep.test --cname=c3.sweep.test,c2.sweep.test \
  --txt-record=big.sweep.test$BIG --txt-record=mid.sweep.test$MID \
  --mx-host=sweep.test,mx1.sweep.test,5 --srv-host=_sip._udp.sweep.test,sip.sweep.test,5060,10,20 \
  --ptr-record=1.0.9.10.in-addr.arpa,www.sweep.test \
  --server=/sf.test/127.0.0.1#9 \
  $(for i in $(seq 0 63); do echo --host-record=h$i.sweep.test,10.9.1.$i; done) \
  2>$D/dnsmasq.log &
DM=$!
sleep 1
dumpcap -q -i lo -f "port $P" -w $D/cap.pcapng 2>$D/dumpcap.log &
TS=$!
for i in $(seq 1 100); do grep -q "Capturing on\|File:" $D/dumpcap.log && break; sleep 0.2; done
sleep 1
dg() { dig @127.0.0.1 -p $P +time=2 +tries=1 "$@" >/dev/null 2>&1; }
dg mid.sweep.test TXT +noedns           # 800 bytes over 512: TC, dig retries over TCP
dg big.sweep.test TXT +bufsize=1232     # TC at 1232, TCP retry with ~3.9 KiB
dg big.sweep.test TXT +bufsize=4096     # the whole ~3.9 KiB answer in one UDP datagram
dg big.sweep.test TXT +tcp
dg www.sweep.test A +cookie
dg www.sweep.test AAAA +cookie=0102030405060708 +subnet=192.0.2.0/24
dg www.sweep.test A +subnet=2001:db8::/48 +nsid
dg c3.sweep.test A
dg c3.sweep.test AAAA +tcp
dg sweep.test MX
dg _sip._udp.sweep.test SRV
dg -x 10.9.0.1
dg nothing.nx.test A
dg outside.example A
dg x.sf.test A +time=4
node -e '
const dgram = require("dgram");
const P = Number(process.argv[1]);
const u16 = (n) => Buffer.from([n >> 8, n & 255]);
const name = (n) => Buffer.concat([...n.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
const s = dgram.createSocket("udp4");
let got = 0;
s.on("message", () => { if (++got === 64) s.close(); });
setTimeout(() => { try { s.close(); } catch {} }, 3000);
// ids 0x5000..0x500f, each used for four names at once
for (let i = 0; i < 64; i++) s.send(Buffer.concat([u16(0x5000 + (i % 16)), u16(0x0100), u16(1), u16(0), u16(0), u16(0), name(`h${i}.sweep.test`), u16(1), u16(1)]), P, "127.0.0.1");
' $P
sleep 1.5
kill -INT $TS; wait $TS
kill $DM; wait $DM 2>/dev/null
cp $D/cap.pcapng $OUT
cat $D/dumpcap.log >&2
rm -rf $D
