#!/bin/bash
# rec.sh OUT.pcap: heldout.py on port 19110 captured on lo, tshark's decoding beside it
OUT=$1; P=19110
D=$(mktemp -d /tmp/hc-h1-XXXX)
dumpcap -q -i lo -f "tcp port $P" -w $D/cap.pcapng 2>$D/dumpcap.log &
TS=$!
for i in $(seq 1 100); do grep -q "Capturing on\|File:" $D/dumpcap.log && break; sleep 0.2; done
sleep 0.5
python3 "$(dirname "$0")"/heldout.py $P
sleep 0.5
kill -INT $TS; wait $TS
editcap -F pcap $D/cap.pcapng $OUT
rm -rf $D
FIELDS="frame.number tcp.stream http.request.method http.request.uri http.request.version http.response.version http.response.code http.response.phrase http.host http.content_type http.content_length_header http.transfer_encoding http.content_encoding http.upgrade"
tshark -r $OUT -d tcp.port==$P,http -Y http -T fields -E header=y -E separator=/t -E occurrence=a -E aggregator='|' -E quote=n $(for f in $FIELDS; do echo -e $f; done | sed 's/^/-e /') > ${OUT%.pcap}.expected.tsv
