#!/bin/bash
# heldout-sweep.pcapng: kafkajs against librdkafka's mock cluster, shapes the other captures lack:
# a GZIP producer, a 280 KiB message produced and fetched (larger than the decoder's input window), two consumers of
# one group joining one after the other (a rebalance), Fetch with short max-wait on an empty
# partition (empty answers), then kcat -L and -Q. kafkajs' idempotent and transactional producers
# ask the controller for a producer id and the mock names none (heldout-txn.pcapng has librdkafka's). Usage: record-sweep.sh OUT.pcapng (port in OUT.port),
# then tshark with kafka-oracle.ts tsharkArgs(OUT, port) > heldout-sweep.expected.tsv, fields over 1 KiB
# (the big message's value) cut to 256 characters and their length
OUT=$1
. "$(dirname "$0")"/broker.sh
start_broker
timeout 90 node "$H/sweep.js" $B "$(cd "$H/../../../.." && pwd)/node_modules/kafkajs"
timeout 20 kcat -b $B -L -t held >/dev/null 2>&1
timeout 20 kcat -b $B -Q -t held:0:-1 -t held2:1:-2 >/dev/null 2>&1
stop_broker $OUT
