#!/bin/bash
# heldout-txn.pcapng: txn.c (a transactional librdkafka producer: InitProducerId, AddPartitionsToTxn,
# AddOffsetsToTxn, TxnOffsetCommit, EndTxn commit and abort) and a read_committed kcat consumer
# against the librdkafka mock cluster. Usage: record-txn.sh OUT.pcapng (port in OUT.port), then
# tshark with kafka-oracle.ts tsharkArgs(OUT, port) > heldout-txn.expected.tsv
OUT=$1
. "$(dirname "$0")"/broker.sh
start_broker
gcc -O1 -o $D/txn $H/txn.c -lrdkafka
timeout 40 $D/txn $B
timeout 20 kcat -b $B -C -t held -p 0 -o beginning -e -q -X isolation.level=read_committed >/dev/null 2>&1
stop_broker $OUT
