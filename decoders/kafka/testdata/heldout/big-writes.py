# Producer and consumer of messages larger than the agent's 16 KiB capture of a read or write
# (tracers.socket.capture_max), through python3-confluent-kafka (librdkafka): a 40 KB record
# (acks=all), a 30 KB one with acks=0 (no answer), then a consumer fetching both partitions.
# Usage: big-writes.py BOOTSTRAP (topic "held", 2 partitions: broker.sh).
import sys, time
from confluent_kafka import Producer, Consumer, TopicPartition
B = sys.argv[1]
p = Producer({'bootstrap.servers': B, 'client.id': 'big-prod', 'linger.ms': 0})
p.produce('held', value=b'y' * 40000, partition=0)
p.flush(10)
p0 = Producer({'bootstrap.servers': B, 'client.id': 'big-acks0', 'acks': 0})
p0.produce('held', value=b'z' * 30000, partition=1)
p0.flush(10)
time.sleep(0.5)
c = Consumer({'bootstrap.servers': B, 'group.id': 'big-g', 'client.id': 'big-cons', 'auto.offset.reset': 'earliest'})
c.assign([TopicPartition('held', 0, 0), TopicPartition('held', 1, 0)])
t0, n = time.time(), 0
while n < 2 and time.time() - t0 < 10:
    m = c.poll(0.2)
    if m and not m.error(): n += 1
c.close()
print('consumed', n)
