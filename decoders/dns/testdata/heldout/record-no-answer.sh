#!/bin/bash
# Usage: record-no-answer.sh ../no-answer.pcap (root), then tsharkTsv (test/decoders/dns-oracle.ts) with -d udp.port==5353,dns
# -d udp.port==5355,dns -d udp.port==15380,dns -d tcp.port==15380,dns -d udp.port==15381,dns > ../no-answer.expected.tsv
# (test/replay/dns-no-answer.test.ts reads the capture with tshark itself).
# Queries nobody answers, in a network namespace of its own (multicast needs a route on its lo):
# multicast DNS (dig @224.0.0.251 -p 5353) and LLMNR (@224.0.0.252 -p 5355) with no
# responder; unicast UDP to a dnsmasq stopped with SIGSTOP (silent); dnsmasq over TCP with
# dig +tcp +keepopen: a.test answered, b.test forwarded to an upstream that refuses TCP, so dnsmasq
# closes the connection without answering (dig may retry it on new connections), then a.test on a
# new one. 5 s later an answered query moves the replay's clock past the decoder's 5 s timeout
# (the first mDNS and unicast queries end there); the LLMNR and the second unicast query are
# still waiting when the capture ends.
set -u
OUT=$1
NS=hc-noanswer-$$
D=$(mktemp -d /tmp/hc-noanswer-XXXX)
ip netns add $NS
X() { ip netns exec $NS "$@"; }
X ip link set lo up
X ip link set lo multicast on
X ip route add 224.0.0.0/4 dev lo
ip netns exec $NS tcpdump -U -i lo -s 0 -w $D/cap.pcap 'udp or tcp' 2>$D/tcpdump.log & T=$!
ip netns exec $NS dnsmasq -k --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces -p 15380 \
  --address=/a.test/10.0.0.1 --server=127.0.0.1#15399 --pid-file= --log-facility=$D/dm1.log & DM1=$!
ip netns exec $NS dnsmasq -k --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces -p 15381 \
  --address=/c.test/10.0.0.3 --pid-file= --log-facility=$D/dm2.log & DM2=$!
sleep 2
kill -STOP $DM2
X dig +tries=1 +time=1 @224.0.0.251 -p 5353 foo.local A
X dig +tries=1 +time=1 @127.0.0.1 -p 15381 c.test A
X dig +tries=1 +time=1 +tcp +keepopen @127.0.0.1 -p 15380 a.test b.test a.test
sleep 5
X dig +tries=1 +time=1 @127.0.0.1 -p 15380 a.test A
X dig +tries=1 +time=1 @224.0.0.252 -p 5355 foo A
X dig +tries=1 +time=1 @127.0.0.1 -p 15381 d.test A
sleep 1
kill $T; wait $T
kill $DM1; kill -TERM $DM2; kill -CONT $DM2; wait $DM1 $DM2
ip netns del $NS
cp $D/cap.pcap $OUT
rm -rf $D
