#!/bin/bash
# heldout-unbound.pcap: unbound 1.17 in a private network namespace (lo MTU 1280), captured with
# tcpdump -i any (Linux cooked v2). An authoritative unbound serves a zone signed by ldns-signzone
# (NSEC3) on 127.0.0.1/::1:53 and 127.0.0.1:5355; a validating resolver unbound on 127.0.0.1:5300
# reaches it through stub zones (0x20 case randomisation, qname minimisation). dig asks every common
# type (A AAAA CNAME chain MX NS SOA TXT CAA NAPTR HTTPS SVCB SSHFP LOC URI TLSA HINFO PTR SRV DNSKEY DS
# NSEC3PARAM, a wildcard, a referral, NODATA, NXDOMAIN, REFUSED, SERVFAIL, NOTIMP, BADVERS, ANY over
# TCP), EDNS options (cookie, ECS, NSID, padding, expire, a private option), TC then the TCP retry,
# answers of 2.8 KiB in IPv4 and IPv6 fragments; Node's resolver (c-ares) a few more. Usage:
# record-unbound.sh OUT.pcap, then the tshark command of test/decoders/dns-oracle.ts tsharkTsv
# with -d udp.port==5300,dns -d tcp.port==5300,dns > heldout-unbound.expected.tsv
set -u
OUT=$1
D=$(mktemp -d /tmp/hc-unbound-XXXX)
cd $D
{
  echo '$ORIGIN sig.test.'; echo '$TTL 300'
  echo '@ IN SOA ns1.sig.test. hostmaster.sig.test. 2026112901 3600 600 86400 60'
  echo '@ IN NS ns1.sig.test.'; echo 'ns1 IN A 127.0.0.1'
  echo 'www IN A 10.7.0.1'; echo 'www IN AAAA 2001:db8::7:1'; echo 'alias IN CNAME www'; echo 'a2 IN CNAME alias'
  echo '@ IN MX 10 mx.sig.test.'; echo '@ IN MX 20 mx2.sig.test.'; echo '_xmpp._tcp IN SRV 5 0 5222 www.sig.test.'
  echo 'txt IN TXT "v=spf1 ip4:10.0.0.0/8 -all" "second string" "third \"quoted\" string"'
  echo '@ IN CAA 0 issue "letsencrypt.org"'; echo '@ IN CAA 128 iodef "mailto:sec@sig.test"'
  echo 'nap IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.sig.test.'
  echo 'svc IN HTTPS 1 . alpn=h2,h3 port=8443 ipv4hint=10.7.0.2'; echo 'svc2 IN SVCB 2 www.sig.test. alpn=h2 port=443'
  echo 'sshfp IN SSHFP 1 1 0123456789abcdef0123456789abcdef01234567'
  echo 'loc IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m'; echo 'uri IN URI 10 1 "https://www.sig.test/"'
  echo 'tlsa IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
  echo 'empty IN TXT ""'; echo 'hinfo IN HINFO "x86" "Linux"'
  for i in $(seq 1 30); do echo "big IN TXT \"rec$i-$(printf 'y%.0s' $(seq 1 180))\""; done
  for i in $(seq 1 14); do echo "mid IN TXT \"mid$i-$(printf 'z%.0s' $(seq 1 180))\""; done
  echo '*.wc IN A 10.7.0.10'; echo 'sub IN NS ns.sub.sig.test.'; echo 'ns.sub IN A 127.0.0.2'
  echo 'sub IN DS 12345 8 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
} > zone.db
K=$(ldns-keygen -a ECDSAP256SHA256 -k sig.test); Z=$(ldns-keygen -a ECDSAP256SHA256 sig.test)
ldns-signzone -n zone.db $K $Z
common() { printf 'server:\n  do-daemonize: no\n  username: ""\n  chroot: ""\n  directory: "%s"\n  pidfile: ""\n  use-syslog: no\n  logfile: ""\n  verbosity: 0\n  do-not-query-localhost: no\n  local-zone: "test." nodefault\n' $D; }
{ common; printf '  interface: 127.0.0.1@53\n  interface: ::1@53\n  interface: 127.0.0.1@5355\n  access-control: 0.0.0.0/0 allow\n  access-control: ::/0 allow\n  edns-buffer-size: 4096\n  max-udp-size: 4096\n'
  printf '  local-zone: "refused.test." refuse\n  local-zone: "nx.test." always_nxdomain\n  local-zone: "7.10.in-addr.arpa." static\n'
  printf '  local-data: "1.0.7.10.in-addr.arpa. PTR www.sig.test."\n  local-data: "7.10.in-addr.arpa. SOA ns1.sig.test. h.sig.test. 1 3600 600 86400 60"\n  module-config: "iterator"\n'
  printf 'auth-zone:\n  name: "sig.test."\n  zonefile: "%s/zone.db.signed"\n  for-downstream: yes\n  for-upstream: yes\nforward-zone:\n  name: "dead.test."\n  forward-addr: 127.0.0.9@9\n' $D
} > auth.conf
{ common; printf '  interface: 127.0.0.1@5300\n  access-control: 127.0.0.0/8 allow\n  use-caps-for-id: yes\n  qname-minimisation: yes\n  edns-buffer-size: 1232\n'
  printf '  domain-insecure: "nx.test."\n  domain-insecure: "dead.test."\n  trust-anchor: "%s"\n  module-config: "validator iterator"\n' "$(cut -f1,3- $K.ds | tr '\t' ' ' | sed 's/IN //')"
  for z in sig.test nx.test; do printf 'stub-zone:\n  name: "%s."\n  stub-addr: 127.0.0.1@53\n' $z; done
  printf 'stub-zone:\n  name: "dead.test."\n  stub-addr: 127.0.0.9@53\n'
} > res.conf
cat > inner.sh <<'IN'
D=$1
ip link set lo up; ip link set lo mtu 1280
unbound -d -c $D/auth.conf 2>$D/auth.log & A=$!
unbound -d -c $D/res.conf 2>$D/res.log & RS=$!
sleep 1
tcpdump -i any -w $D/cap.pcap -U 2>$D/td.log & T=$!
sleep 2
dg() { dig "$@" +time=2 +tries=1 >/dev/null 2>&1; }
S=@127.0.0.1
for q in "www A" "www AAAA" "a2 A" ". MX" ". NS" ". SOA" "txt TXT" ". CAA" "nap NAPTR" "svc HTTPS" "svc2 SVCB" "sshfp SSHFP" "loc LOC" "uri URI" "tlsa TLSA" "empty TXT" "hinfo HINFO" "_xmpp._tcp SRV"; do
  set -- $q; n=$1; [ "$n" = . ] && n=sig.test || n=$n.sig.test; dg $S $n $2; done
dg $S -x 10.7.0.1
dg $S +dnssec www.sig.test A; dg $S +dnssec sig.test DNSKEY; dg $S +dnssec sub.sig.test DS; dg $S +dnssec nope.sig.test A
dg $S +dnssec sig.test NSEC3PARAM; dg $S x.wc.sig.test A +dnssec; dg $S sub.sig.test A +norec; dg $S www.sig.test MX
dg $S foo.nx.test A; dg $S foo.refused.test A; dg $S foo.dead.test A +time=4
dg $S big.sig.test TXT +bufsize=1232 +dnssec
dg $S +tcp +keepopen www.sig.test A txt.sig.test TXT sig.test MX
dg $S +cookie +subnet=10.1.0.0/16 +nsid +padding=128 +expire www.sig.test A
dg $S +ednsopt=65001:abcd www.sig.test A
dg $S +edns=1 www.sig.test A
dg $S www.sig.test A +opcode=status
dg $S WWW.SIG.TEST A
dg $S mid.sig.test TXT +bufsize=4096; dg @::1 mid.sig.test TXT +bufsize=4096; dg $S mid.sig.test TXT +bufsize=4096 +dnssec
dg $S -p 5355 www.sig.test A
dg $S sig.test ANY +tcp
dg @127.0.0.1 -p 5300 +dnssec www.sig.test A; dg @127.0.0.1 -p 5300 +dnssec a2.sig.test AAAA
dg @127.0.0.1 -p 5300 +dnssec nope.sig.test A; dg @127.0.0.1 -p 5300 foo.nx.test A
node -e '
const dns=require("dns").promises; const r=new dns.Resolver({timeout:2000,tries:1}); r.setServers(["127.0.0.1"]);
(async()=>{ for (const [f,n] of [["resolveSoa","sig.test"],["resolveCaa","sig.test"],["resolveNaptr","nap.sig.test"],["resolveSrv","_xmpp._tcp.sig.test"],["resolveTxt","txt.sig.test"],["reverse","10.7.0.1"]]) { try { await r[f](n); } catch(e){} } })();'
sleep 1
kill -INT $T; wait $T
kill $A $RS; wait $A $RS 2>/dev/null
IN
timeout 120 unshare --net bash inner.sh $D
cp $D/cap.pcap $OUT
cd /; rm -rf $D
