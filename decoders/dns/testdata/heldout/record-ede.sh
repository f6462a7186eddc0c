#!/bin/bash
# Usage: record-ede.sh OUT.pcap, then tshark -d udp.port==15371,dns -d tcp.port==15371,dns
# -d udp.port==15372,dns (fields of test/decoders/dns-oracle.ts tsharkTsv) > ../heldout-ede.expected.tsv
# Extended DNS Errors (RFC 8914) from unbound 1.17 with ede: yes: an instance whose access-control
# refuses 127.0.0.0/8 answers REFUSED with EDE 18 (Prohibited) over UDP and TCP, with and without
# a cookie; an instance that allows answers a local zone (NOERROR, NXDOMAIN; no EDE).
set -u
OUT=$1
D=$(mktemp -d /tmp/hc-ede-XXXX)
conf() { # PORT ACCESS
  printf 'server:\n  do-daemonize: no\n  username: ""\n  chroot: ""\n  directory: "%s"\n  pidfile: ""\n' $D
  printf '  use-syslog: no\n  logfile: ""\n  verbosity: 0\n  interface: 127.0.0.1\n  port: %s\n  ede: yes\n' $1
  printf '  access-control: 127.0.0.0/8 %s\n  local-zone: "ede.test." static\n' $2
  printf '  local-data: "www.ede.test. A 10.8.0.1"\n'
}
conf 15371 refuse > $D/refuse.conf
conf 15372 allow > $D/allow.conf
unbound -c $D/refuse.conf & U1=$!
unbound -c $D/allow.conf & U2=$!
tcpdump -U -i lo -s 0 -w $D/cap.pcap 'port 15371 or port 15372' 2>$D/tcpdump.log & T=$!
sleep 2
dig +tries=1 @127.0.0.1 -p 15371 www.ede.test A
dig +tries=1 +nocookie @127.0.0.1 -p 15371 blocked.ede.test AAAA
dig +tcp +tries=1 @127.0.0.1 -p 15371 www.ede.test TXT
dig +tries=1 @127.0.0.1 -p 15372 www.ede.test A
dig +tries=1 @127.0.0.1 -p 15372 nx.ede.test A
sleep 1
kill $T; wait $T
kill $U1 $U2; wait $U1 $U2
cp $D/cap.pcap $OUT
rm -rf $D
