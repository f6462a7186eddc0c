// Compares the Kafka decoder's records for a capture with tshark's decoding of the same capture
// (the `*.expected.tsv` format of ../shared/corpus/SOURCES.md: one row per packet, fields that
// occur several times joined with '|').
import { replayFile, ReplayConn } from '../../host/src/replay/index';
import { loadDecoder } from '../helpers/decoder';
import { DecodedRecord } from '../../host/src/decoders/records';
import { FLAG_NO_REQUEST } from '../../decoders/abi/abi';

export const TSHARK_FIELDS = [
  'frame.number', 'tcp.stream', 'kafka.len', 'kafka.request_key', 'kafka.request.version', 'kafka.response_key',
  'kafka.response.version', 'kafka.correlation_id', 'kafka.client_id', 'kafka.request_frame', 'kafka.topic_name',
  'kafka.partition_id', 'kafka.error', 'kafka.message_key', 'kafka.message_value',
];

/** The tshark command of SOURCES.md, for captures we record ourselves. */
export function tsharkArgs(file: string, port?: number): string[] {
  const args = ['-r', file];
  if (port) args.push('-d', `tcp.port==${port},kafka`);
  args.push('-Y', 'kafka', '-T', 'fields', '-E', 'header=y', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=|', '-E', 'quote=n');
  for (const f of TSHARK_FIELDS) args.push('-e', f);
  return args;
}

/** One Kafka message as tshark decoded it, keyed by (tcp.stream, correlation id). */
export interface OracleMsg {
  corr: number;
  request?: { key: number; version: number; clientId: string };
  /** tshark matched the response to its request and decoded its body. */
  response?: { key: number; version: number };
  /** A message tshark framed but whose body it did not decode (version it does not know, or no request). */
  headerOnly: boolean;
  topics: Set<string>;
  partitions: Set<number>;
  errors: number[];
}

export function parseTsv(text: string): Map<number, Map<number, OracleMsg>> {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const cols = lines[0].split('\t');
  const at = (row: string[], name: string): string[] => {
    const v = row[cols.indexOf(name)] ?? '';
    return v === '' ? [] : v.split('|');
  };
  const streams = new Map<number, Map<number, OracleMsg>>();
  for (const line of lines.slice(1)) {
    const row = line.split('\t');
    const stream = Number(at(row, 'tcp.stream')[0]);
    const corrs = at(row, 'kafka.correlation_id').map(Number);
    const reqKeys = at(row, 'kafka.request_key').map(Number);
    const reqVers = at(row, 'kafka.request.version').map(Number);
    const respKeys = at(row, 'kafka.response_key').map(Number);
    const respVers = at(row, 'kafka.response.version').map(Number);
    const clients = at(row, 'kafka.client_id');
    if (!streams.has(stream)) streams.set(stream, new Map());
    const msgs = streams.get(stream)!;
    corrs.forEach((corr, i) => {
      const m: OracleMsg = msgs.get(corr) ?? { corr, headerOnly: false, topics: new Set(), partitions: new Set(), errors: [] };
      msgs.set(corr, m);
      if (reqKeys.length === corrs.length) m.request = { key: reqKeys[i], version: reqVers[i], clientId: clients.length === corrs.length ? clients[i] : '' };
      else if (respKeys.length === corrs.length) m.response = { key: respKeys[i], version: respVers[i] };
      else m.headerOnly = true;
      // Body fields line up with a message only when the packet holds one message.
      if (corrs.length === 1) {
        for (const t of at(row, 'kafka.topic_name')) if (t !== '[ Null ]') m.topics.add(t);
        for (const p of at(row, 'kafka.partition_id')) m.partitions.add(Number(p));
        if (respKeys.length === 1) m.errors.push(...at(row, 'kafka.error').map(Number));
      }
    });
  }
  return streams;
}

export interface Replayed { records: DecodedRecord[]; conns: Map<number, ReplayConn>; traps: number; }

/** Kafka server ports of the captures (9092, and 36333 where the corpus says decode-as). */
export const KAFKA_PORTS = [9092, 36333];

/** Replays a capture through the Kafka decoder (one decoder stream per TCP connection). Without
 *  a handshake the replay guesses roles by ports; a Kafka port names the server, as tshark's
 *  decode-as does. With `readCap`, each chunk the replay delivers keeps its first `readCap` bytes
 *  and the rest is reported lost, as the agent reports a read or write longer than
 *  tracers.socket.capture_max. */
export async function replayKafka(file: string, ports: number[] = KAFKA_PORTS, readCap = 0): Promise<Replayed> {
  const h = loadDecoder('kafka');
  const conns = new Map<number, ReplayConn>();
  const flipped = (c: ReplayConn): boolean => !c.roleKnown && ports.includes(c.client.port) && !ports.includes(c.server.port);
  const dir = (c: ReplayConn, fromClient: boolean): number => (fromClient !== flipped(c) ? 0 : 1);
  await replayFile(file, {
    onOpen: (c) => { conns.set(c.id, c); },
    onData: (c, fromClient, bytes, ts) => {
      if (readCap <= 0 || bytes.length <= readCap) { h.inst.feed(c.id, dir(c, fromClient), bytes, ts); return; }
      h.inst.feed(c.id, dir(c, fromClient), bytes.subarray(0, readCap), ts);
      h.inst.gap(c.id, dir(c, fromClient), bytes.length - readCap);
    },
    onGap: (c, fromClient, lost) => { h.inst.gap(c.id, dir(c, fromClient), lost); },
    onClose: (c) => { h.inst.closeStream(c.id); },
  });
  return { records: h.records, conns, traps: h.inst.counters.traps };
}

export interface Agreement {
  messages: number;      // correlation ids tshark decoded
  compared: string[];    // what was compared, for the report
  problems: string[];
}

function topicsOf(r: DecodedRecord): Set<string> {
  const s = new Set<string>();
  const first = r.attributes['messaging.destination.name'];
  if (typeof first === 'string') s.add(first);
  const all = r.attributes['telegen.kafka.topics'];
  if (Array.isArray(all)) for (const t of all) s.add(t);
  return s;
}

/** Every message tshark decodes must be decoded with the same values, and nothing more. */
export function agree(oracle: Map<number, Map<number, OracleMsg>>, rep: Replayed): Agreement {
  const out: Agreement = { messages: 0, compared: [], problems: [] };
  const byConn = new Map<number, DecodedRecord[]>();
  for (const r of rep.records) {
    if (!byConn.has(r.stream)) byConn.set(r.stream, []);
    byConn.get(r.stream)!.push(r);
  }
  const corrKey = (xs: number[]): string => [...new Set(xs)].sort((a, b) => a - b).join(',');
  const used = new Set<number>();
  for (const [stream, msgs] of oracle) {
    out.messages += msgs.size;
    const want = corrKey([...msgs.keys()]);
    // tshark's stream numbers and ours need not match: pair them by their correlation ids.
    let conn = -1;
    for (const [id, recs] of byConn) {
      if (!used.has(id) && corrKey(recs.map((r) => r.attributes['kafka.correlation_id'] as number)) === want) { conn = id; break; }
    }
    if (conn < 0) {
      out.problems.push(`tcp.stream ${stream}: no connection with correlation ids {${want}}`);
      continue;
    }
    used.add(conn);
    for (const m of msgs.values()) {
      const recs = byConn.get(conn)!.filter((r) => r.attributes['kafka.correlation_id'] === m.corr);
      const where = `tcp.stream ${stream} corr ${m.corr}`;
      if (recs.length !== 1) { out.problems.push(`${where}: ${recs.length} records`); continue; }
      const r = recs[0];
      const a = r.attributes;
      if (m.request) {
        if (a['kafka.api_key'] !== m.request.key || a['kafka.api_version'] !== m.request.version) {
          out.problems.push(`${where}: api ${a['kafka.api_key']}/v${a['kafka.api_version']}, tshark ${m.request.key}/v${m.request.version}`);
        }
        if ((a['messaging.client.id'] ?? '') !== m.request.clientId) out.problems.push(`${where}: client id ${a['messaging.client.id']}, tshark ${m.request.clientId}`);
        out.compared.push('api_key', 'api_version', 'client_id');
      } else if (!(r.flags & FLAG_NO_REQUEST) && !m.headerOnly) {
        out.problems.push(`${where}: we saw a request tshark did not`);
      }
      if (m.response && (m.response.key !== a['kafka.api_key'] || m.response.version !== a['kafka.api_version'])) {
        out.problems.push(`${where}: response api ${m.response.key}/v${m.response.version} vs ${a['kafka.api_key']}/v${a['kafka.api_version']}`);
      }
      if (m.topics.size > 0) {
        const mine = topicsOf(r);
        if ([...m.topics].sort().join(',') !== [...mine].sort().join(',')) out.problems.push(`${where}: topics ${[...mine]} vs tshark ${[...m.topics]}`);
        out.compared.push('topics');
      }
      if (m.partitions.size === 1) {
        const p = String([...m.partitions][0]);
        if (a['messaging.destination.partition.id'] !== p) out.problems.push(`${where}: partition ${a['messaging.destination.partition.id']} vs tshark ${p}`);
        out.compared.push('partition');
      }
      if (m.response) {
        const firstError = m.errors.find((e) => e !== 0);
        if (a['kafka.error_code'] !== firstError) out.problems.push(`${where}: error ${a['kafka.error_code']} vs tshark ${m.errors.join('|')}`);
        out.compared.push('error');
      }
    }
    const extra = byConn.get(conn)!.filter((r) => !msgs.has(r.attributes['kafka.correlation_id'] as number));
    for (const r of extra) out.problems.push(`conn ${conn}: record corr ${r.attributes['kafka.correlation_id']} tshark did not decode`);
  }
  for (const [id, recs] of byConn) if (!used.has(id)) out.problems.push(`conn ${id}: ${recs.length} records on a connection tshark shows no Kafka on`);
  if (rep.traps) out.problems.push(`${rep.traps} traps`);
  return out;
}
