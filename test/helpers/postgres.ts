// A private PostgreSQL 15 cluster for live tests: its own directory (owned by the postgres user,
// trust auth), on a free 127.0.0.1 port, stopped and removed after.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import { freePort, waitFor } from './agent';

export const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface PgCluster {
  dir: string;
  port: number;
  /** Starts the server (initdb is done) and waits until it accepts connections. */
  start(): Promise<void>;
  /** Fast shutdown (SIGINT to the postmaster), then the directory is removed. */
  stop(): Promise<void>;
}

/** initdb in a new directory named `prefix…`; the server starts with start(), so a test can start
 *  the agent in between, before the server's first connection. */
export async function initPostgres(prefix: string): Promise<PgCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  execFileSync('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'initdb'), '-D', path.join(dir, 'data'), '-U', 'postgres',
    '--auth-host=trust', '--auth-local=trust', '--no-sync'], { stdio: 'ignore' });
  const port = await freePort();
  const pidFile = path.join(dir, 'data', 'postmaster.pid');
  let pg: ChildProcess | undefined;
  return {
    dir, port,
    async start() {
      pg = spawn('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'postgres'), '-D', path.join(dir, 'data'), '-k', dir, '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'ssl=off'], { stdio: 'ignore' });
      await waitFor(() => fs.existsSync(pidFile) && /ready/.test(fs.readFileSync(pidFile, 'utf8').split('\n')[7] ?? ''), 30_000);
    },
    async stop() {
      if (pg) {
        const p = pg;
        const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]) : p.pid!;
        try { process.kill(pid, 'SIGINT'); } catch { /* gone */ }
        await new Promise<void>((r) => { if (p.exitCode !== null) return r(); p.once('exit', () => r()); setTimeout(r, 20_000).unref(); });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
