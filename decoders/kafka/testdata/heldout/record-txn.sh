#!/bin/bash
# heldout-txn.pcapng: txn.c (a transactional librdkafka producer: InitProducerId, AddPartitionsToTxn,
# AddOffsetsToTxn, TxnOffsetCommit, EndTxn commit and abort) and a read_committed kcat consumer
# against the librdkafka mock cluster. Usage: record-txn.sh OUT.pcapng (port in OUT.port), then
# tshark with kafka-oracle.ts tsharkArgs(OUT, port) > heldout-txn.expected.tsv
OUT=$1; H=$(cd "$(dirname "$0")" && pwd)
D=$(mktemp -d /tmp/kafka-txn-XXXX)
gcc -O1 -o $D/mock-broker $H/../../../../test/fixtures/kafka-mock/mock-broker.c -lrdkafka
gcc -O1 -o $D/txn $H/txn.c -lrdkafka
mkfifo $D/in
$D/mock-broker 2 held held2 < $D/in > $D/boot 2>/dev/null &
BP=$!
exec 8>$D/in
for i in $(seq 1 50); do grep -q 127 $D/boot && break; sleep 0.1; done
B=$(head -1 $D/boot); PORT=${B#*:}
dumpcap -q -i lo -f "tcp port $PORT" -w $D/cap.pcapng 2>$D/dumpcap.log &
TS=$!
for i in $(seq 1 100); do grep -q "Capturing on\|File:" $D/dumpcap.log && break; sleep 0.2; done
sleep 0.5
timeout 40 $D/txn $B
timeout 20 kcat -b $B -C -t held -p 0 -o beginning -e -q -X isolation.level=read_committed >/dev/null 2>&1
sleep 0.5
kill -INT $TS; wait $TS
exec 8>&-
wait $BP
cp $D/cap.pcapng $OUT; echo $PORT > ${OUT%.pcapng}.port
rm -rf $D
