// The kafkajs clients of record-sweep.sh (see there). argv: bootstrap, kafkajs path.
const { Kafka, CompressionTypes, logLevel } = require(process.argv[3]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const kafka = (clientId) => new Kafka({ clientId, brokers: [process.argv[2]], logLevel: logLevel.NOTHING, retry: { retries: 2 } });
(async () => {
  const gz = kafka('sweep-gzip').producer();
  await gz.connect();
  await gz.send({ topic: 'held', compression: CompressionTypes.GZIP, messages: [{ key: 'a', value: 'gzip one' }, { key: 'b', value: 'gzip two' }, { value: 'gzip three' }], acks: -1 });
  await gz.send({ topic: 'held', messages: [{ partition: 1, value: 'x'.repeat(280 * 1024) }] });
  await gz.disconnect();

  // the big message fetched back, on its own
  const big = kafka('sweep-big').consumer({ groupId: 'sweep-big-group', maxWaitTimeInMs: 200 });
  await big.connect();
  await big.subscribe({ topic: 'held', fromBeginning: true });
  let seenBig = false;
  await big.run({ eachMessage: async ({ message }) => { if (message.value.length > 280000) seenBig = true; } });
  for (let i = 0; i < 50 && !seenBig; i++) await sleep(100);
  await big.disconnect();

  // a group of two: the second joins while the first is consuming (rebalance); empty fetches wait 100 ms
  const members = [kafka('sweep-member-1'), kafka('sweep-member-2')].map((k) => k.consumer({ groupId: 'sweep-group', maxWaitTimeInMs: 100, sessionTimeout: 6000, heartbeatInterval: 300, rebalanceTimeout: 3000 }));
  await members[0].connect();
  await members[0].subscribe({ topic: 'held2', fromBeginning: false });
  await members[0].run({ eachMessage: async () => {} });
  await sleep(1500);
  await members[1].connect();
  await members[1].subscribe({ topic: 'held2', fromBeginning: false });
  await members[1].run({ eachMessage: async () => {} });
  await sleep(4000);
  await members[1].disconnect();
  await members[0].disconnect();
})().catch((e) => { console.error(e); process.exit(1); });
