/* A transactional librdkafka producer: InitProducerId, AddPartitionsToTxn, Produce,
 * AddOffsetsToTxn + TxnOffsetCommit, EndTxn (commit), then a second transaction aborted. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
static void die(rd_kafka_error_t *e, const char *what) { if (e) { fprintf(stderr, "%s: %s\n", what, rd_kafka_error_string(e)); rd_kafka_error_destroy(e); } }
int main(int argc, char **argv) {
  char err[512];
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  rd_kafka_conf_set(c, "bootstrap.servers", argv[1], err, sizeof err);
  rd_kafka_conf_set(c, "transactional.id", "heldout-txn", err, sizeof err);
  rd_kafka_conf_set(c, "client.id", "heldout-txn", err, sizeof err);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
  die(rd_kafka_init_transactions(rk, 10000), "init");
  die(rd_kafka_begin_transaction(rk), "begin");
  rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("held"), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE("in-txn", 6), RD_KAFKA_V_END);
  rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(offs, "held2", 1)->offset = 1;
  rd_kafka_consumer_group_metadata_t *cgm = rd_kafka_consumer_group_metadata_new("heldout-txn-group");
  die(rd_kafka_send_offsets_to_transaction(rk, offs, cgm, 10000), "offsets");
  die(rd_kafka_commit_transaction(rk, 10000), "commit");
  die(rd_kafka_begin_transaction(rk), "begin2");
  rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("held2"), RD_KAFKA_V_PARTITION(1), RD_KAFKA_V_VALUE("aborted", 7), RD_KAFKA_V_END);
  rd_kafka_flush(rk, 5000);
  die(rd_kafka_abort_transaction(rk, 10000), "abort");
  rd_kafka_consumer_group_metadata_destroy(cgm);
  rd_kafka_topic_partition_list_destroy(offs);
  rd_kafka_destroy(rk);
  puts("done");
  return 0;
}
