// Host-side redaction: applied to every span before anything leaves the agent, whatever the
// decoder emitted (a decoder is untrusted and may not know the site's policy).
import { Attributes } from '@opentelemetry/api';
import { PipelineConfig } from './config';

export const REDACTED = 'REDACTED';

/** Systems whose db.query.text is SQL (others, e.g. redis, redact values in their decoder). */
const SQL_SYSTEMS = new Set(['postgresql', 'mysql', 'mariadb', 'mssql', 'oracle.db', 'sqlite', 'cockroachdb', 'clickhouse', 'other_sql']);

export interface Redactor { (attrs: Attributes): void }

/** What is redacted when both the policy file and pipeline.redaction say something: their union.
 *  The policy is the operator's floor and the config can only add to it, so a value is redacted
 *  when either names it (before, a policy section replaced pipeline.redaction whole: the default
 *  policy has one, so a header added in the config was exported as is). */
export function mergeRedaction(policy: PipelineConfig['redaction'] | undefined, config: PipelineConfig['redaction']): PipelineConfig['redaction'] {
  if (!policy) return config;
  const union = (a: string[], b: string[]) => {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const x of [...a, ...b]) { const k = x.toLowerCase(); if (!seen.has(k)) { seen.add(k); out.push(x); } }
    return out;
  };
  return { headers: union(policy.headers, config.headers), query_params: union(policy.query_params, config.query_params), sql_literals: policy.sql_literals || config.sql_literals };
}

export function makeRedactor(cfg: PipelineConfig['redaction']): Redactor {
  const headerKeys = new Set<string>();
  for (const h of cfg.headers) {
    const n = h.toLowerCase();
    headerKeys.add(`http.request.header.${n}`);
    headerKeys.add(`http.response.header.${n}`);
    headerKeys.add(`rpc.grpc.request.metadata.${n}`);
  }
  const params = new Set(cfg.query_params.map((q) => q.toLowerCase()));
  const bare = new Set(cfg.headers.map((h) => h.toLowerCase()));
  return (attrs) => {
    // for…in: no key array per span (every span passes here). Only keys ending in "s" can be a
    // header list, so the suffix tests run for few of them.
    for (const k in attrs) {
      // A header list stays a list (semconv string[]; the decoders redact credentials so too),
      // one REDACTED per value: the count of fields is not a secret, the type should not change.
      if (headerKeys.has(k)) { const v = attrs[k]; attrs[k] = Array.isArray(v) ? v.map(() => REDACTED) : REDACTED; }
      // Decoder-private flat header lists [name, value, name, value, …] (HTTP/2 header blocks).
      else if (k.charCodeAt(k.length - 1) === 0x73 && (k.endsWith('.headers') || k.endsWith('.trailers')) && Array.isArray(attrs[k])) {
        const l = attrs[k] as string[];
        for (let i = 0; i + 1 < l.length; i += 2) if (bare.has(String(l[i]).toLowerCase())) l[i + 1] = REDACTED;
      }
    }
    const q = attrs['url.query'];
    if (typeof q === 'string' && q.length && params.size) attrs['url.query'] = redactQuery(q, params);
    const full = attrs['url.full'];
    if (typeof full === 'string' && full.includes('?') && params.size) {
      const i = full.indexOf('?');
      attrs['url.full'] = full.slice(0, i + 1) + redactQuery(full.slice(i + 1), params);
    }
    const sql = attrs['db.query.text'];
    if (cfg.sql_literals && typeof sql === 'string' && SQL_SYSTEMS.has(String(attrs['db.system.name']))) attrs['db.query.text'] = redactSqlLiterals(sql);
  };
}

export function redactQuery(query: string, params: Set<string>): string {
  return query.split('&').map((kv) => {
    const eq = kv.indexOf('=');
    if (eq < 0) return kv;
    let name = kv.slice(0, eq);
    try { name = decodeURIComponent(name.replace(/\+/g, ' ')); } catch { /* keep raw */ }
    return params.has(name.toLowerCase()) ? `${kv.slice(0, eq)}=${REDACTED}` : kv;
  }).join('&');
}

// Where a '-' is a sign, not a subtraction: after an operator, an opening bracket, a comma, the
// start, or a keyword that an expression follows.
const SIGN_AFTER = /(?:^|[-+*/<>=~!@#%^&|`(,[]|\b(?:select|where|and|or|not|when|then|else|return|returning|by|limit|offset|in|is|between|values|set|on|having|case|like|any|all|array)\s*)$/i;

/** A number's sign is part of its literal, as PostgreSQL's grammar folds `- 1234` into one constant
 *  (pg_stat_statements shows pgbench's `abalance + :delta` as `abalance + $1`): `x = -1` → `x = ?`.
 *  Without this, pgbench's one UPDATE was two statements, `+ ?` and `+ -?`, by the delta's sign. */
function dropUnaryMinus(out: string): string {
  let k = out.length;
  while (k > 0 && (out[k - 1] === ' ' || out[k - 1] === '\t' || out[k - 1] === '\n' || out[k - 1] === '\r')) k--;
  if (k === 0 || out[k - 1] !== '-') return out;
  const before = out.slice(0, k - 1).trimEnd();
  return SIGN_AFTER.test(before) ? out.slice(0, k - 1) : out;
}

/**
 * Replaces SQL literals by `?`: quoted strings ('…' with '' escapes, E'…' with backslash escapes,
 * $tag$…$tag$ dollar quotes), numbers not part of identifiers, and leaves identifiers, keywords,
 * "quoted identifiers", $1 parameters and comments' structure alone.
 */
export function redactSqlLiterals(sql: string): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  const isIdent = (c: string) => /[A-Za-z0-9_$]/.test(c);
  while (i < n) {
    const c = sql[i];
    if (c === '-' && sql[i + 1] === '-') { const e = sql.indexOf('\n', i); const end = e < 0 ? n : e; out += sql.slice(i, end); i = end; continue; }
    if (c === '/' && sql[i + 1] === '*') { const e = sql.indexOf('*/', i + 2); const end = e < 0 ? n : e + 2; out += sql.slice(i, end); i = end; continue; }
    if (c === '"') { const e = sql.indexOf('"', i + 1); const end = e < 0 ? n : e + 1; out += sql.slice(i, end); i = end; continue; }
    if (c === "'" || ((c === 'E' || c === 'e') && sql[i + 1] === "'" && (i === 0 || !isIdent(sql[i - 1])))) {
      const backslash = c !== "'";
      let j = backslash ? i + 2 : i + 1;
      while (j < n) {
        if (backslash && sql[j] === '\\') { j += 2; continue; }
        if (sql[j] === "'") { if (sql[j + 1] === "'") { j += 2; continue; } break; }
        j++;
      }
      out += '?';
      i = Math.min(n, j + 1);
      continue;
    }
    if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (m && (i === 0 || !isIdent(sql[i - 1]))) {
        const tag = m[0];
        const e = sql.indexOf(tag, i + tag.length);
        out += '?';
        i = e < 0 ? n : e + tag.length;
        continue;
      }
      const p = /^\$\d+/.exec(sql.slice(i));
      if (p) { out += p[0]; i += p[0].length; continue; }
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      if (i > 0 && isIdent(sql[i - 1])) { out += c; i++; continue; }
      const m = /^(?:0[xX][0-9A-Fa-f]+|\d*\.?\d+(?:[eE][+-]?\d+)?)/.exec(sql.slice(i));
      if (m) { out = dropUnaryMinus(out) + '?'; i += m[0].length; continue; }
    }
    out += c;
    i++;
  }
  return out;
}
