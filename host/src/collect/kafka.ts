// Kafka target: cluster metadata and consumer-group lag through kafkajs' admin client. Names
// follow the OpenTelemetry Collector's kafkametrics receiver (kafka.brokers,
// kafka.partition.current_offset, kafka.consumer_group.lag, …).
import type { Target } from './config';
import { PollContext, Point } from './types';

type KafkaTarget = Extract<Target, { type: 'kafka' }>;

export async function pollKafka(t: KafkaTarget, ctx: PollContext): Promise<Point[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Kafka, logLevel } = require('kafkajs') as typeof import('kafkajs');
  const kafka = new Kafka({ clientId: t.client_id, brokers: t.brokers, connectionTimeout: ctx.timeoutMs, requestTimeout: ctx.timeoutMs, retry: { retries: 1 }, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out: Point[] = [];
    const cluster = await admin.describeCluster();
    out.push({ name: 'kafka.brokers', kind: 'gauge', unit: '{broker}', description: 'Brokers in the cluster', attributes: {}, value: cluster.brokers.length });
    const topics = (await admin.listTopics()).filter((x) => !x.startsWith('__'));
    const high = new Map<string, Map<number, number>>();
    for (const topic of topics) {
      const offs = await admin.fetchTopicOffsets(topic);
      const m = new Map<number, number>();
      for (const o of offs) {
        m.set(o.partition, Number(o.high));
        const a = { topic, partition: o.partition };
        out.push({ name: 'kafka.partition.current_offset', kind: 'gauge', unit: '1', description: 'Current (high watermark) offset of a partition', attributes: a, value: Number(o.high) });
        out.push({ name: 'kafka.partition.oldest_offset', kind: 'gauge', unit: '1', description: 'Oldest offset of a partition', attributes: a, value: Number(o.low) });
      }
      high.set(topic, m);
      out.push({ name: 'kafka.topic.partitions', kind: 'gauge', unit: '{partition}', description: 'Partitions of a topic', attributes: { topic }, value: offs.length });
    }
    let listed: string[] = [];
    try {
      listed = (await admin.listGroups()).groups.filter((g) => g.protocolType === 'consumer' || g.protocolType === '').map((g) => g.groupId);
    } catch (e) {
      // Some brokers/proxies (and librdkafka's mock) lack ListGroups: metadata and offsets are
      // still worth reporting, and configured groups are still read.
      if (!t.groups.length) throw e;
    }
    for (const g of [...new Set([...listed, ...t.groups])].map((groupId) => ({ groupId }))) {
      const fetched = await admin.fetchOffsets({ groupId: g.groupId, topics });
      for (const ft of fetched) {
        let sum = 0;
        for (const p of ft.partitions) {
          const committed = Number(p.offset);
          if (committed < 0) continue; // no commit yet for this partition
          const hw = high.get(ft.topic)?.get(p.partition) ?? committed;
          const lag = Math.max(0, hw - committed);
          sum += lag;
          const a = { group: g.groupId, topic: ft.topic, partition: p.partition };
          out.push({ name: 'kafka.consumer_group.offset', kind: 'gauge', unit: '1', description: 'Committed offset of a consumer group', attributes: a, value: committed });
          out.push({ name: 'kafka.consumer_group.lag', kind: 'gauge', unit: '1', description: 'Messages the group is behind the high watermark', attributes: a, value: lag });
        }
        out.push({ name: 'kafka.consumer_group.lag_sum', kind: 'gauge', unit: '1', description: 'Lag of a group summed over a topic\'s partitions', attributes: { group: g.groupId, topic: ft.topic }, value: sum });
      }
    }
    return out;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
