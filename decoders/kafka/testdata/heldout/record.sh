#!/bin/bash
# Held-out Kafka traffic against librdkafka's mock cluster: kcat with old protocol versions
# (api.version.request=false + broker.version.fallback), consumer-group mode (-G), offset queries
# (-Q), and kafkajs admin calls. Usage: record.sh OUT.pcapng
OUT=$1  # then: tshark with kafka-oracle.ts tsharkArgs(OUT, port in OUT.port) > NAME.expected.tsv
. "$(dirname "$0")"/broker.sh
start_broker
k() { timeout 20 kcat -b $B "$@" >/dev/null 2>&1; }
for v in 0.9.0 0.10.0 0.11.0 1.0.0 2.0.0; do
  printf 'old-%s-a\nold-%s-b\n' $v $v | k -X api.version.request=false -X broker.version.fallback=$v -P -t held -p 0
  k -X api.version.request=false -X broker.version.fallback=$v -C -t held -p 0 -o beginning -e -q
  k -X api.version.request=false -X broker.version.fallback=$v -L -t held
done
printf 'k1:v1\nk2:v2\n' | k -P -t held2 -K : -p 1 -z lz4 -X linger.ms=50
k -Q -t held:0:-1 -t held2:1:-2
k -X session.timeout.ms=6000 -X enable.auto.commit=true -X auto.commit.interval.ms=100 -G heldgroup -o beginning -e -q held2
timeout 30 node -e '
const { Kafka, logLevel } = require(process.argv[2]);
(async () => {
  const kafka = new Kafka({ clientId: "heldout-admin", brokers: [process.argv[1]], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try { await admin.createTopics({ topics: [{ topic: "made-by-admin", numPartitions: 2 }] }); } catch (e) {}
  try { await admin.fetchTopicMetadata({ topics: ["held", "held2"] }); } catch (e) {}
  try { await admin.fetchTopicOffsets("held2"); } catch (e) {}
  try { await admin.fetchOffsets({ groupId: "heldgroup", topics: ["held2"] }); } catch (e) {}
  try { await admin.describeGroups(["heldgroup"]); } catch (e) {}
  try { await admin.listGroups(); } catch (e) {}
  try { await admin.describeConfigs({ resources: [{ type: 2, name: "held" }] }); } catch (e) {}
  try { await admin.deleteTopics({ topics: ["made-by-admin"] }); } catch (e) {}
  try { await admin.fetchTopicMetadata({ topics: ["no-such-topic-x"] }); } catch (e) {}
  await admin.disconnect();
})().catch(() => process.exit(0));' $B "$(cd "$(dirname "$0")"/../../../.. && pwd)/node_modules/kafkajs"
stop_broker $OUT
