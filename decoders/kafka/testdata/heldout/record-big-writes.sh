#!/bin/bash
# heldout-big-writes.pcapng: python3-confluent-kafka (librdkafka) producing a 40 KB record, a 30 KB
# one with acks=0, and fetching both (big-writes.py), against librdkafka's mock cluster. Usage:
# record-big-writes.sh OUT.pcapng (port in OUT.port), then tshark with kafka-oracle.ts
# tsharkArgs(OUT, port) > heldout-big-writes.expected.tsv, message values cut to 64 characters.
OUT=$1
. "$(dirname "$0")"/broker.sh
start_broker
timeout 60 /usr/bin/python3 "$H/big-writes.py" $B
stop_broker $OUT
