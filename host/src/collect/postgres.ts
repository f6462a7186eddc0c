// PostgreSQL target: pg_stat_database per database and, when the extension is installed,
// pg_stat_statements (top N by total execution time). Metric names follow the OpenTelemetry
// Collector's postgresql receiver (postgresql.commits, postgresql.db_size, …).
import type { Target } from './config';
import { PollContext, Point } from './types';

type PgTarget = Extract<Target, { type: 'postgresql' }>;

interface PgClient { connect(): Promise<void>; query(q: string, v?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>; end(): Promise<void> }

const DB_SUMS: Array<[string, string, string, string]> = [
  // column, metric, unit, description
  ['xact_commit', 'postgresql.commits', '{transaction}', 'Committed transactions'],
  ['xact_rollback', 'postgresql.rollbacks', '{transaction}', 'Rolled back transactions'],
  ['deadlocks', 'postgresql.deadlocks', '{deadlock}', 'Deadlocks detected'],
  ['temp_files', 'postgresql.temp_files', '{file}', 'Temporary files created by queries'],
  ['conflicts', 'postgresql.conflicts', '{query}', 'Queries canceled due to recovery conflicts'],
];

export async function pollPostgres(t: PgTarget, ctx: PollContext): Promise<Point[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Client } = require('pg') as { Client: new (o: object) => PgClient };
  const client = new Client({
    connectionString: t.url,
    connectionTimeoutMillis: ctx.timeoutMs,
    statement_timeout: ctx.timeoutMs,
    query_timeout: ctx.timeoutMs,
    application_name: ctx.userAgent.slice(0, 63),
  });
  await client.connect();
  try {
    const out: Point[] = [];
    const dbs = await client.query(
      `SELECT datname, numbackends, xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched,
              tup_inserted, tup_updated, tup_deleted, deadlocks, temp_files, conflicts, pg_database_size(datname) AS size
         FROM pg_stat_database WHERE datname IS NOT NULL AND has_database_privilege(datname, 'CONNECT')`);
    for (const r of dbs.rows) {
      const db = { 'postgresql.database.name': String(r.datname) };
      const n = (k: string) => Number(r[k] ?? 0);
      out.push({ name: 'postgresql.backends', kind: 'gauge', unit: '1', description: 'Backends connected to the database', attributes: db, value: n('numbackends') });
      out.push({ name: 'postgresql.db_size', kind: 'gauge', unit: 'By', description: 'Database disk usage', attributes: db, value: n('size') });
      for (const [col, name, unit, description] of DB_SUMS) out.push({ name, kind: 'sum', unit, description, attributes: db, value: n(col) });
      out.push({ name: 'postgresql.blocks_read', kind: 'sum', unit: '{block}', description: 'Blocks read, by source', attributes: { ...db, source: 'heap_read' }, value: n('blks_read') });
      out.push({ name: 'postgresql.blocks_read', kind: 'sum', unit: '{block}', description: 'Blocks read, by source', attributes: { ...db, source: 'heap_hit' }, value: n('blks_hit') });
      for (const op of ['returned', 'fetched', 'inserted', 'updated', 'deleted']) {
        out.push({ name: 'postgresql.tup_operations', kind: 'sum', unit: '{tuple}', description: 'Rows processed, by operation', attributes: { ...db, operation: op }, value: n(`tup_${op}`) });
      }
    }
    if (t.statements) {
      const ext = await client.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'`);
      if (ext.rows.length) {
        // The view normalizes literals to $n itself, so the text carries no values.
        const st = await client.query(
          `SELECT s.queryid::text AS queryid, d.datname, s.calls, s.total_exec_time, s.rows, left(s.query, 1024) AS query
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE s.queryid IS NOT NULL ORDER BY s.total_exec_time DESC LIMIT $1`, [t.statements_limit]);
        for (const r of st.rows) {
          const a = { 'postgresql.database.name': String(r.datname), 'postgresql.queryid': String(r.queryid), 'db.query.text': String(r.query ?? '') };
          out.push({ name: 'postgresql.statement.calls', kind: 'sum', unit: '{call}', description: 'Executions of the statement (pg_stat_statements)', attributes: a, value: Number(r.calls) });
          out.push({ name: 'postgresql.statement.exec_time', kind: 'sum', unit: 'ms', description: 'Total execution time of the statement (pg_stat_statements)', attributes: a, value: Number(r.total_exec_time) });
          out.push({ name: 'postgresql.statement.rows', kind: 'sum', unit: '{row}', description: 'Rows returned or affected (pg_stat_statements)', attributes: a, value: Number(r.rows) });
        }
      }
    }
    return out;
  } finally {
    await client.end().catch(() => undefined);
  }
}
