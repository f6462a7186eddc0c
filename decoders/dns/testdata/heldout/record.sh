#!/bin/bash
# Usage: record.sh OUT.pcapng, then: editcap -F pcap OUT.pcapng heldout-edge.pcap and tshark -d udp.port==15353,dns -d tcp.port==15353,dns -d udp.port==15354,dns -d tcp.port==15354,dns (fields of test/decoders/dns-oracle.ts tsharkTsv)
# Records heldout DNS capture: dnsmasq (port $P1) and the crafted server (port $P2) on 127.0.0.1.
set -u
OUT=$1
P1=${P1:-15353}
P2=${P2:-15354}
D=$(mktemp -d /tmp/hc-dns-XXXX)
dnsmasq --keep-in-foreground --log-facility=- --conf-file=/dev/null --no-resolv --no-hosts \
  --port=$P1 --listen-address=127.0.0.1 --bind-interfaces --user=root --pid-file= \
  --address=/example.test/10.1.2.3 --address=/nx.test/ \
  --host-record=www.example.test,10.1.2.4,2001:db8::4 --host-record=xn--bcher-kva.example.test,10.1.2.9 \
  --cname=alias.example.test,www.example.test --cname=alias2.example.test,alias.example.test \
  --cname=alias3.example.test,alias2.example.test \
  --txt-record=multi.example.test,"one","two","three" --txt-record=multi.example.test,"second rr" \
  --mx-host=example.test,mail.example.test,10 --mx-host=example.test,mail2.example.test,20 \
  --srv-host=_ldap._tcp.example.test,ldap1.example.test,389,0,100 --srv-host=_ldap._tcp.example.test,ldap2.example.test,389,1,50 \
  --ptr-record=9.2.1.10.in-addr.arpa,www.example.test \
  --ptr-record=4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa,www.example.test \
  --naptr-record=example.test,100,10,S,SIP+D2U,,_sip._udp.example.test \
  --caa-record=example.test,0,issuewild,ca.example.net \
  --dns-rr=svcb.example.test,64,0001000001000302683200030002200b \
  --dns-rr=key.example.test,48,010103080301 \
  2>$D/dnsmasq.log &
DM=$!
node "$(dirname "$0")"/crafted.js $P2 > $D/crafted.log 2>&1 &
CR=$!
sleep 1
dumpcap -q -i lo -f "port $P1 or port $P2" -w $D/cap.pcapng 2>$D/dumpcap.log &
TS=$!
for i in $(seq 1 100); do grep -q "Capturing on\|File:" $D/dumpcap.log && break; sleep 0.2; done
sleep 1
dg() { dig @127.0.0.1 +time=2 +tries=1 "$@" >/dev/null 2>&1; }
# dnsmasq: types and options
dg -p $P1 WwW.ExAmPlE.TeSt A
dg -p $P1 www.example.test AAAA +nsid +subnet=10.1.0.0/16 +expire +padding=64 +ednsopt=65001:abcd
dg -p $P1 alias3.example.test A
dg -p $P1 alias3.example.test AAAA
dg -p $P1 multi.example.test TXT
dg -p $P1 example.test MX
dg -p $P1 _ldap._tcp.example.test SRV
dg -p $P1 -x 10.1.2.9
dg -p $P1 -x 2001:db8::4
dg -p $P1 example.test NAPTR
dg -p $P1 example.test CAA
dg -p $P1 svcb.example.test TYPE64
dg -p $P1 key.example.test DNSKEY +dnssec
dg -p $P1 xn--bcher-kva.example.test A
dg -p $P1 example.test SOA
dg -p $P1 example.test ANY
dg -p $P1 foo.nx.test AAAA
dg -p $P1 outside.invalid MX
dg -p $P1 example.test TYPE65280
dg -p $P1 +edns=1 ednsv1.example.test A
dg -p $P1 +tcp +keepopen www.example.test A alias3.example.test A multi.example.test TXT
dg -p $P1 +qr +norecurse +adflag +cdflag flags.example.test A
# crafted server
for n in ptrptr odd long soa-ns cut txt mxsrv noq notimp servfail yxdomain; do dg -p $P2 +ignore $n.weird.test A; done
dg -p $P2 +tcp +ignore txt.weird.test TXT
dg -p $P2 +tcp split.weird.test A
dg -p $P2 +tcp weird.test AXFR
node -e '
const dgram=require("dgram"),net=require("net");
const P=Number(process.argv[1]);
const u16=(n)=>Buffer.from([n>>8,n&255]);
const name=(n)=>Buffer.concat([...n.split(".").map(l=>Buffer.concat([Buffer.from([l.length]),Buffer.from(l)])),Buffer.from([0])]);
const q=(id,flags,qs)=>Buffer.concat([u16(id),u16(flags),u16(qs.length),u16(0),u16(0),u16(0),...qs.map(([n,t])=>Buffer.concat([name(n),u16(t),u16(1)]))]);
const s=dgram.createSocket("udp4");
// mDNS style: a QU query with a known answer, an unsolicited response without a question (id 0, cache-flush class)
const qu=Buffer.concat([u16(0),u16(0),u16(1),u16(1),u16(0),u16(0),name("_ipp._tcp.local"),u16(12),u16(0x8001),Buffer.from([0xc0,12]),u16(12),u16(1),Buffer.from([0,0,0x11,0x94]),u16(17),Buffer.from([14]),Buffer.from("Office Printer"),Buffer.from([0xc0,12])]);
const ann=Buffer.concat([u16(0),u16(0x8400),u16(0),u16(2),u16(0),u16(0),name("Office Printer._ipp._tcp.local"),u16(33),u16(0x8001),Buffer.from([0,0,0,120]),u16(11),u16(0),u16(0),u16(631),Buffer.from([2]),Buffer.from("pr"),Buffer.from([0xc0,37]),Buffer.from([0xc0,60]),u16(1),u16(0x8001),Buffer.from([0,0,0,120]),u16(4),Buffer.from([10,9,9,9])]);
const msgs=[q(0x1111,0x0100,[["multiq.weird.test",1],["other.weird.test",28]]),q(0x2222,0x2000,[["weird.test",6]]),q(0x3333,0x2800,[["weird.test",6]]),qu,ann];
let i=0;s.on("message",()=>{});
const next=()=>{if(i<msgs.length){s.send(msgs[i++],P,"127.0.0.1");setTimeout(next,100);}else{setTimeout(()=>s.close(),300);
 // TCP: three queries in one write, responses come back in one write
 const c=net.connect(P,"127.0.0.1",()=>{const qs=[q(0x4441,0x0100,[["weird.test",1]]),q(0x4442,0x0100,[["txt.weird.test",16]]),q(0x4443,0x0100,[["mxsrv.weird.test",15]])];
  c.write(Buffer.concat(qs.map(m=>Buffer.concat([u16(m.length),m]))));});
 c.on("data",()=>setTimeout(()=>c.end(),300));}};
next();' $P2
sleep 1.5
kill -INT $TS; wait $TS
kill $DM $CR; wait $DM $CR 2>/dev/null
cp $D/cap.pcapng $OUT
cat $D/dumpcap.log >&2
rm -rf $D
