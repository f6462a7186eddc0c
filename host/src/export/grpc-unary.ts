// A unary gRPC call over node:http2, for the OTLP exporters (gRPC over HTTP/2 as
// grpc/doc/PROTOCOL-HTTP2.md defines it). Ours rather than grpc-js' client because grpc-js
// compresses every message itself, at zlib's default level, with no way to pass a message that is
// already compressed: that was 2.0 µs of a log record's 6.3 µs and 2.4 of a span's 11.4
// (bench/README.md). Here the caller hands over the gzip member (made at a fast level on libuv's
// pool) and it goes out as a compressed message (flag 1, `grpc-encoding: gzip`): the same request
// any gRPC server or Collector reads.
//
// Failures come back shaped as grpc-js' errors ({ code, details, metadata.get() }, message
// `<code> <NAME>: <details>`), so classifyExportError and the retry rules are the same for both.
// What is not here: keep-alive pings, reconnect backoff (the BatchQueue paces retries and
// RenewingChannel replaces a failing client), name resolution beyond what net.connect does.
import * as http2 from 'node:http2';
import * as zlib from 'node:zlib';

export interface GrpcUnaryOptions {
  /** http://host:port (plaintext) or https://host:port (TLS). */
  origin: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  userAgent: string;
}

/** A grpc-js-shaped error. */
export interface GrpcError extends Error {
  code: number;
  details: string;
  metadata: { get(key: string): Array<string | Buffer> };
}

const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
const CANCELLED = 1;
const UNKNOWN = 2;
const DEADLINE_EXCEEDED = 4;
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

function grpcError(code: number, details: string, headers: http2.IncomingHttpHeaders = {}): GrpcError {
  const metadata = {
    get(key: string): Array<string | Buffer> {
      const v = headers[key];
      if (v === undefined) return [];
      const list = Array.isArray(v) ? v : [v];
      // Binary metadata is base64 (padding optional), as the spec says for `-bin` keys.
      return key.endsWith('-bin') ? list.flatMap((x) => x.split(',')).map((x) => Buffer.from(x.trim(), 'base64')) : list;
    },
  };
  return Object.assign(new Error(`${code} ${STATUS_NAMES[code] ?? 'UNKNOWN'}: ${details}`), { code, details, metadata });
}

/** HTTP status of a response that is not gRPC, mapped as the gRPC spec's table maps it. */
function httpStatusToGrpc(status: number): number {
  switch (status) {
    case 400:
      return INTERNAL;
    case 401:
      return UNAUTHENTICATED;
    case 403:
      return PERMISSION_DENIED;
    case 404:
      return UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return UNAVAILABLE;
    default:
      return UNKNOWN;
  }
}

/** RST_STREAM codes as grpc-js reads them: refused = not processed (retry is safe). */
function rstToGrpc(rst: number): number {
  if (rst === http2.constants.NGHTTP2_REFUSED_STREAM) return UNAVAILABLE;
  if (rst === http2.constants.NGHTTP2_CANCEL) return CANCELLED;
  if (rst === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM) return RESOURCE_EXHAUSTED;
  if (rst === http2.constants.NGHTTP2_INADEQUATE_SECURITY) return PERMISSION_DENIED;
  return INTERNAL;
}

const percentDecode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** The one response message of a unary call (length-prefixed, gunzipped when flagged). */
function responseMessage(body: Buffer, encoding: string | undefined): Buffer {
  if (body.length < 5) return Buffer.alloc(0);
  const len = body.readUInt32BE(1);
  const msg = body.subarray(5, 5 + len);
  if (body[0] !== 1) return msg;
  if (encoding === 'gzip') return zlib.gunzipSync(msg);
  if (encoding === 'deflate') return zlib.inflateSync(msg);
  throw new Error(`compressed response with grpc-encoding ${encoding ?? 'identity'}`);
}

/**
 * One HTTP/2 connection, opened on the first call and again after it closed, failed or got a
 * GOAWAY. Idle, it does not keep the process alive.
 */
export class GrpcUnaryClient {
  private session: http2.ClientHttp2Session | undefined;
  private closed = false;
  /**
   * False once the server listed its encodings (grpc-accept-encoding) without gzip: later calls
   * go uncompressed, as grpc-js falls back to identity.
   */
  acceptsGzip = true;

  constructor(private readonly opts: GrpcUnaryOptions) {}

  private connect(): http2.ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const t = this.opts.tls;
    const session = http2.connect(this.opts.origin, t ? { ca: t.ca, cert: t.cert, key: t.key, ALPNProtocols: ['h2'] } : {});
    const forget = () => {
      if (this.session === session) this.session = undefined;
    };
    // Errors reach the calls through their streams; the session's own must not go unhandled.
    session.on('error', forget);
    session.on('close', forget);
    // Calls already sent finish on it; new ones open a new connection.
    session.on('goaway', forget);
    session.unref();
    this.session = session;
    return session;
  }

  /**
   * Sends `message` (gzip bytes when `gzip`, else the serialized request) to `path`; resolves with
   * the response message, rejects with a GrpcError.
   */
  call(path: string, message: Buffer, gzip: boolean, headers: Record<string, string>, timeoutMs: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(grpcError(UNAVAILABLE, 'client closed'));
    let session: http2.ClientHttp2Session;
    try {
      session = this.connect();
    } catch (e) {
      return Promise.reject(grpcError(UNAVAILABLE, `No connection established. Last error: ${(e as Error).message}`));
    }
    const connected = !session.connecting;
    const req: http2.OutgoingHttpHeaders = {
      ...headers,
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-accept-encoding': 'identity,gzip',
      'grpc-timeout': `${Math.min(99_999_999, Math.max(1, Math.ceil(timeoutMs)))}m`,
      'user-agent': this.opts.userAgent,
    };
    if (gzip) req['grpc-encoding'] = 'gzip';
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      let sawConnect = connected;
      let timer: NodeJS.Timeout | undefined;
      const done = (err: GrpcError | undefined, value?: Buffer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.off('connect', onConnect);
        if (err) reject(err);
        else resolve(value as Buffer);
      };
      const onConnect = () => {
        sawConnect = true;
      };
      if (!connected) session.once('connect', onConnect);
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(req, { endStream: false });
      } catch (e) {
        done(grpcError(UNAVAILABLE, `No connection established. Last error: ${(e as Error).message}`));
        return;
      }
      timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        done(grpcError(DEADLINE_EXCEEDED, `Deadline exceeded after ${timeoutMs} ms`));
      }, timeoutMs);
      let responseHeaders: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      const finish = (h: http2.IncomingHttpHeaders) => {
        const all = { ...responseHeaders, ...h };
        const status = Number(all['grpc-status']);
        if (!Number.isInteger(status)) {
          const httpStatus = Number(all[':status']);
          if (httpStatus !== 200) return done(grpcError(httpStatusToGrpc(httpStatus), `Received HTTP status code ${httpStatus}`, all));
          return done(grpcError(UNKNOWN, 'No status received', all));
        }
        if (status !== 0) return done(grpcError(status, percentDecode(String(all['grpc-message'] ?? '')), all));
        try {
          done(undefined, responseMessage(Buffer.concat(chunks), all['grpc-encoding'] as string | undefined));
        } catch (e) {
          done(grpcError(INTERNAL, (e as Error).message, all));
        }
      };
      stream.on('response', (h) => {
        responseHeaders = h;
        const accepted = h['grpc-accept-encoding'];
        if (typeof accepted === 'string' && !accepted.split(',').some((e) => e.trim() === 'gzip')) this.acceptsGzip = false;
        // Trailers-Only: the status comes in the headers, with END_STREAM.
        if (h['grpc-status'] !== undefined) finish({});
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('trailers', (h) => finish(h));
      stream.on('error', (e: Error & { code?: string }) => {
        if (!sawConnect && !connected) return done(grpcError(UNAVAILABLE, `No connection established. Last error: ${e.message}`));
        if (e.code === 'ERR_HTTP2_GOAWAY_SESSION') return done(grpcError(UNAVAILABLE, `GOAWAY: ${e.message}`));
        done(grpcError(UNAVAILABLE, `Connection dropped: ${e.message}`));
      });
      stream.on('close', () => {
        if (settled) return;
        const rst = stream.rstCode ?? 0;
        if (rst && rst !== http2.constants.NGHTTP2_NO_ERROR) return done(grpcError(rstToGrpc(rst), `Received RST_STREAM with code ${rst}`));
        if (responseHeaders[':status'] !== undefined) return finish({});
        done(grpcError(UNAVAILABLE, sawConnect || connected ? 'Connection dropped' : 'No connection established'));
      });
      // The 5-byte message prefix, then the body as it is: no concatenation copy.
      const prefix = Buffer.allocUnsafe(5);
      prefix[0] = gzip ? 1 : 0;
      prefix.writeUInt32BE(message.length, 1);
      stream.write(prefix);
      stream.end(message);
    });
  }

  /** Closes the connection once its calls have finished; later calls fail. */
  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }
}
