#!/bin/sh
# Records one capture on loopback and writes tshark's decoding beside it (as in the shared corpus).
# Usage (root): record.sh NAME PORT DECODE_AS -- command...   e.g. record.sh grpc-js 50051 http2 -- node grpc.js 50051
# (DECODE_AS http for h2c upgrades: tshark follows the 101 into HTTP/2 itself)
# Output: ../NAME.pcap and ../NAME.expected.tsv (columns of SOURCES.md, http2 + grpc).
set -eu
name=$1; port=$2; as=$3; shift 4
out=$(cd "$(dirname "$0")/.." && pwd)
tshark -q -i lo -w "$out/$name.pcap" -F pcap -f "tcp port $port" 2>/tmp/tshark-$name.log &
tpid=$!
i=0; while ! grep -q Capturing /tmp/tshark-$name.log && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
"$@"
sleep 0.5
kill -INT $tpid; wait $tpid || true
tshark -r "$out/$name.pcap" -d "tcp.port==$port,$as" -Y http2 -T fields -E header=y -E separator=/t -E aggregator='|' \
  -e frame.number -e tcp.stream -e http2.streamid -e http2.type -e http2.flags -e http2.length \
  -e http2.headers.method -e http2.headers.path -e http2.headers.authority -e http2.headers.status \
  -e http2.header.name -e http2.header.value -e http2.rst_stream.error -e grpc.compressed_flag -e grpc.message_length \
  > "$out/$name.expected.tsv" 2>/dev/null
if [ "$as" = http ]; then
  # h2c: the HTTP/1.1 part (the upgrade request and 101, or a declined upgrade), columns of the
  # shared corpus's *.expected-http1.tsv plus the client port
  tshark -r "$out/$name.pcap" -d "tcp.port==$port,$as" -Y http -T fields -E header=y -E separator=/t -E aggregator='|' \
    -e frame.number -e tcp.stream -e http.request.method -e http.request.uri -e http.request.version \
    -e http.response.version -e http.response.code -e http.response.phrase -e http.host -e http.content_type \
    -e http.content_length_header -e http.transfer_encoding -e http.content_encoding -e http.upgrade -e tcp.srcport \
    > "$out/$name.expected-http1.tsv" 2>/dev/null
fi
# one row per call (HTTP/2 stream, h2c upgrade, HTTP/1.1 exchange) with gRPC status and message counts
node "$(dirname "$0")/calls.js" "$out/$name.pcap" "$port" "$as"
echo "$name: $(wc -c < "$out/$name.pcap") bytes, $(($(wc -l < "$out/$name.expected.tsv") - 1)) rows"
