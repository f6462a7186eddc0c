// Statement-level database metrics (issue 5, what pg_stat_statements gives per query, but seen
// from the wire for every client): database spans feed `db.client.operation.duration` with the
// normalized statement as `db.query.text` (semconv lists it as an opt-in attribute of that
// histogram), so per statement the histogram's count is the calls, its buckets the latency,
// `error.type` (the SQLSTATE) the errors; `db.client.response.returned_rows` (semconv) carries
// the rows. The series limit of Analytics bounds the statements per service (overflow series).
//
// Normalization makes one series per statement shape, not per execution: literals become `?`
// (the redaction stage's SQL lexer), comments go (sqlcommenter tags are per request), whitespace
// collapses, and a list of placeholders — IN (?, ?, ?) or VALUES (?, ?), (?, ?) — counts as one.
import { redactSqlLiterals } from '../pipeline/redact';

export const MAX_STATEMENT_CHARS = 2048;
export const ROWS_INSTRUMENT = 'db.client.response.returned_rows';
/** Semconv's advice for db.client.response.returned_rows. */
export const ROWS_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
const CACHE_MAX = 4096;

/** Statement text → its normalized form (the same statements recur: cache the lexing). */
const cache = new Map<string, string>();

export function normalizeStatement(sql: string): string {
  const hit = cache.get(sql);
  if (hit !== undefined) return hit;
  let s = stripComments(redactSqlLiterals(sql))
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\s*;$/, '');
  // ( ?, ?, ? ) → (?) ; then (?), (?), (?) → (?)
  s = s.replace(/\(\s*(\?|\$\d+)(?:\s*,\s*(?:\?|\$\d+))+\s*\)/g, '(?)').replace(/\(\?\)(?:\s*,\s*\(\?\))+/g, '(?)');
  if (s.length > MAX_STATEMENT_CHARS) s = s.slice(0, MAX_STATEMENT_CHARS);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(sql, s);
  return s;
}

/** Drops line and block comments outside "quoted identifiers" (string literals are already `?`). */
function stripComments(sql: string): string {
  let out = '';
  for (let i = 0; i < sql.length;) {
    const c = sql[i];
    if (c === '"') {
      const e = sql.indexOf('"', i + 1);
      const end = e < 0 ? sql.length : e + 1;
      out += sql.slice(i, end);
      i = end;
    } else if (c === '-' && sql[i + 1] === '-') {
      const e = sql.indexOf('\n', i);
      i = e < 0 ? sql.length : e;
      out += ' ';
    } else if (c === '/' && sql[i + 1] === '*') {
      const e = sql.indexOf('*/', i + 2);
      i = e < 0 ? sql.length : e + 2;
      out += ' ';
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
