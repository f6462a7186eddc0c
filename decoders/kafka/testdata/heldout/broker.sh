# Sourced by record*.sh: the librdkafka mock cluster (topics held, held2; 2 partitions) on
# 127.0.0.1 and a capture of its port. start_broker sets D (temp dir), B (bootstrap), PORT;
# stop_broker OUT ends both, copies the capture to OUT and the port to OUT's .port file.
H=$(cd "$(dirname "$0")" && pwd)
start_broker() {
  D=$(mktemp -d /tmp/kafka-heldout-XXXX)
  gcc -O1 -o $D/mock-broker $H/../../../../test/fixtures/kafka-mock/mock-broker.c -lrdkafka
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
}
stop_broker() {
  sleep 0.5
  kill -INT $TS; wait $TS
  exec 8>&-
  wait $BP
  cp $D/cap.pcapng $1; echo $PORT > ${1%.pcapng}.port
  rm -rf $D
}
