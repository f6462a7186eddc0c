// A private nginx for a live test: one worker in the foreground, its pid, logs and temp paths in
// the test's directory, only 127.0.0.1, `sendfile on` (Debian's default for static files).
import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';

/** Writes DIR/nginx.conf with `types` and `server` blocks inside http {} and starts nginx on it;
 *  the caller kills the returned process. */
export function startNginx(dir: string, types: string, server: string): ChildProcess {
  const tmpPaths = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((d) => `${d}_temp_path ${path.join(dir, d)};`).join(' ');
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
daemon off;
events { worker_connections 64; }
http {
  access_log off;
  ${tmpPaths}
  types { ${types} }
  sendfile on;
  ${server}
}
`);
  return spawn('nginx', ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
}
