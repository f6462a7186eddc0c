#!/bin/bash
# heldout-kafkajs-admin.pcapng: kafkajs-admin.js (kafkajs' admin client: CreateAcls, DescribeAcls,
# DeleteAcls, AlterConfigs against a stand-in broker), captured on lo. Usage:
# record-kafkajs-admin.sh OUT.pcapng (port in OUT.port), then tshark with kafka-oracle.ts
# tsharkArgs(OUT, port) > heldout-kafkajs-admin.expected.tsv
OUT=$1
H=$(cd "$(dirname "$0")" && pwd)
D=$(mktemp -d /tmp/kafka-heldout-XXXX)
WAIT_MS=3000 node $H/kafkajs-admin.js "$H/../../../../node_modules/kafkajs" > $D/port 2>$D/err &
NP=$!
for i in $(seq 1 50); do [ -s $D/port ] && break; sleep 0.1; done
PORT=$(head -1 $D/port)
dumpcap -q -i lo -f "tcp port $PORT" -w $D/cap.pcapng 2>$D/dumpcap.log &
TS=$!
wait $NP
sleep 0.5
kill -INT $TS; wait $TS
cat $D/err
cp $D/cap.pcapng $OUT; echo $PORT > ${OUT%.pcapng}.port
rm -rf $D
