# Records grpc-python.pcap: gRPC C-core (Debian's python3-grpcio 1.51, not grpc-js) server and
# client on 127.0.0.1 with raw-bytes messages (no generated code): unary with metadata and
# trailing metadata, INVALID_ARGUMENT with a non-ASCII message, a 100 ms deadline
# the server misses, four times (its own DEADLINE_EXCEEDED and the client's RST_STREAM CANCEL race:
# on the wire either comes first), a 300 KB
# response, a gzip-compressed 100 KB request, server streaming (5) ending OK and ending
# RESOURCE_EXHAUSTED, client streaming (3), bidi (3/3), UNIMPLEMENTED, 30 unary calls with 200-byte
# metadata values (HPACK dynamic table reuse and eviction), and a server stream the client cancels.
# Usage: /usr/bin/python3 grpc-python.py PORT
import grpc, sys, time
from concurrent import futures

PORT = int(sys.argv[1])
raw = lambda b: b

def unary(req, ctx):
    if req == b'fail':
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, 'bad ünïcode arg')
    if req == b'slow':
        time.sleep(0.5)
    if req == b'big':
        return b'x' * 300000
    # text only: C-core peers send -bin values as raw bytes after a 0 byte (SETTINGS 0xfe03, its
    # true-binary extension), which tshark shows empty, so the capture could not be compared
    ctx.set_trailing_metadata((('x-trail', 't1'),))
    return req[::-1]

def server_stream(req, ctx):
    for i in range(5):
        yield bytes([65 + i]) * 10
    if req == b'err':
        ctx.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, 'quota')

def client_stream(it, ctx):
    return str(sum(len(m) for m in it)).encode()

def bidi(it, ctx):
    for m in it:
        yield m + b'!'

handlers = grpc.method_handlers_generic_handler('demo.v1.Echo', {
    'Unary': grpc.unary_unary_rpc_method_handler(unary, raw, raw),
    'ServerStream': grpc.unary_stream_rpc_method_handler(server_stream, raw, raw),
    'ClientStream': grpc.stream_unary_rpc_method_handler(client_stream, raw, raw),
    'Bidi': grpc.stream_stream_rpc_method_handler(bidi, raw, raw),
})
server = grpc.server(futures.ThreadPoolExecutor(4))
server.add_generic_rpc_handlers((handlers,))
server.add_insecure_port(f'127.0.0.1:{PORT}')
server.start()

ch = grpc.insecure_channel(f'127.0.0.1:{PORT}')
U = ch.unary_unary('/demo.v1.Echo/Unary', raw, raw)
S = ch.unary_stream('/demo.v1.Echo/ServerStream', raw, raw)
C = ch.stream_unary('/demo.v1.Echo/ClientStream', raw, raw)
B = ch.stream_stream('/demo.v1.Echo/Bidi', raw, raw)
X = ch.unary_unary('/demo.v1.Echo/Missing', raw, raw)

def call(f):
    try:
        f()
    except grpc.RpcError as e:
        print('rpc error', e.code())

call(lambda: U(b'hello', metadata=(('x-user', 'u1'),)))
call(lambda: U(b'fail'))
for ms in (100, 50, 20, 10):
    call(lambda: U(b'slow', timeout=ms / 1000))
call(lambda: U(b'big'))
call(lambda: U(b'z' * 100000, compression=grpc.Compression.Gzip))
call(lambda: list(S(b'go')))
call(lambda: list(S(b'err')))
call(lambda: C(iter([b'a', b'bb', b'ccc'])))
call(lambda: list(B(iter([b'1', b'2', b'3']))))
call(lambda: X(b'?'))
for i in range(30):
    call(lambda: U(b'n%d' % i, metadata=(('x-req-id', 'id-%d-%s' % (i, 'v' * 200)),)))
it = S(b'go')
next(it)
it.cancel()
time.sleep(0.7)
ch.close()
server.stop(0)
