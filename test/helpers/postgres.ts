// A private PostgreSQL 15 cluster for live tests: its own directory (owned by the postgres user,
// trust auth unless a password is given), on a free 127.0.0.1 port, stopped and removed after.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import { freePort, waitFor } from './agent';
import { signalPid } from './signal';

export const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface PgCluster {
  dir: string;
  port: number;
  /** The postmaster's pid, once start() has resolved (0 before). */
  readonly pid: number;
  /** Starts the server (initdb is done) and waits until it accepts connections. */
  start(): Promise<void>;
  /** Fast shutdown (SIGINT to the postmaster), then the directory is removed. */
  stop(): Promise<void>;
}

export interface PgOptions {
  /** The postgres user's password: TCP clients must then authenticate (SCRAM). Default: trust. */
  password?: string;
  /** More server settings, each `name=value` (e.g. shared_preload_libraries). */
  settings?: string[];
}

/** initdb in a new directory named `prefix…`; the server starts with start(), so a test can start
 *  the agent in between, before the server's first connection. */
export async function initPostgres(prefix: string, opts: PgOptions = {}): Promise<PgCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  const pw = path.join(dir, 'pw');
  if (opts.password !== undefined) fs.writeFileSync(pw, opts.password + '\n');
  execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const auth = opts.password !== undefined ? ['--auth-host=scram-sha-256', `--pwfile=${pw}`] : ['--auth-host=trust'];
  execFileSync('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'initdb'), '-D', path.join(dir, 'data'), '-U', 'postgres',
    ...auth, '--auth-local=trust', '--no-sync'], { stdio: 'ignore' });
  const port = await freePort();
  const pidFile = path.join(dir, 'data', 'postmaster.pid');
  let pg: ChildProcess | undefined;
  let postmaster = 0;
  return {
    dir, port,
    get pid() { return postmaster; },
    async start() {
      pg = spawn('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'postgres'), '-D', path.join(dir, 'data'), '-k', dir, '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'ssl=off', ...(opts.settings ?? []).flatMap((x) => ['-c', x])], { stdio: 'ignore' });
      await waitFor(() => fs.existsSync(pidFile) && /ready/.test(fs.readFileSync(pidFile, 'utf8').split('\n')[7] ?? ''), 60_000);
      postmaster = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
    },
    async stop() {
      if (pg) {
        const p = pg;
        const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]) : p.pid!;
        try { signalPid(pid, 'SIGINT'); } catch { /* not a live postgres pid */ }
        // A postmaster that has not exited after 20 s is killed, not left running past the test.
        await new Promise<void>((r) => {
          if (p.exitCode !== null) return r();
          const t = setTimeout(() => { try { signalPid(pid, 'SIGKILL'); } catch { /* not a live postgres pid */ } r(); }, 20_000);
          t.unref();
          p.once('exit', () => { clearTimeout(t); r(); });
        });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Gives the cluster a TLS certificate: ssl_cert_file/ssl_key_file default to server.crt/server.key
 *  in the data directory, and the backend refuses a key that is not its user's and private. */
export function installServerCert(pg: PgCluster, certFile: string, keyFile: string): void {
  const crt = path.join(pg.dir, 'data', 'server.crt');
  const key = path.join(pg.dir, 'data', 'server.key');
  fs.copyFileSync(certFile, crt);
  fs.copyFileSync(keyFile, key);
  execFileSync('chown', ['postgres:postgres', crt, key]);
  fs.chmodSync(key, 0o600);
}
