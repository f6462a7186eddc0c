// unbound on 127.0.0.1 for the DNS-over-TLS and DNS-over-HTTPS tests: a private directory with a
// self-made CA's certificate, local data only (it never asks another server), DNS over TCP/UDP,
// TLS (RFC 7858) and, when asked, HTTPS (RFC 8484: unbound's https-port, built with nghttp2) on
// free ports.
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { startServer, freePort, Served } from '../helpers/agent';
import { makePki, Pki } from '../tls/tls-helpers';

export interface Unbound { served: Served; plain: number; tls: number; https: number; pki: Pki; stop(): Promise<void> }

/** 120 TXT records of 204 bytes: a 26 KB answer, over one TLS record and over TCP's 16 KiB. */
export const BIG_TXT = Array.from({ length: 120 }, (_, i) => `${String(i).padStart(4, '0')}${String.fromCharCode(97 + (i % 26)).repeat(200)}`);

export function haveUnbound(): boolean {
  return spawnSync('sh', ['-c', 'command -v unbound']).status === 0;
}

/** Whether this unbound serves DNS over HTTPS (`unbound -V` lists --with-libnghttp2). */
export function unboundHasDoh(): boolean {
  return /with-libnghttp2/.test(spawnSync('unbound', ['-V'], { encoding: 'utf8' }).stdout ?? '');
}

export async function startUnbound(opts: { https?: boolean } = {}): Promise<Unbound> {
  const pki = makePki();
  const [plain, tls, https] = [await freePort(), await freePort(), opts.https ? await freePort() : 0];
  const conf = path.join(pki.dir, 'unbound.conf');
  const lines = [
    'server:',
    '  verbosity: 1',
    `  interface: 127.0.0.1@${plain}`,
    `  interface: 127.0.0.1@${tls}`,
    `  tls-port: ${tls}`,
    ...(https ? [`  interface: 127.0.0.1@${https}`, `  https-port: ${https}`] : []),
    `  tls-service-key: ${pki.key}`,
    `  tls-service-pem: ${pki.cert}`,
    '  do-daemonize: no', '  chroot: ""', '  username: ""', `  directory: ${pki.dir}`, '  pidfile: ""',
    '  use-syslog: no', '  logfile: ""', '  do-ip6: no', '  access-control: 127.0.0.0/8 allow',
    '  msg-buffer-size: 65552',
    '  local-zone: "example.test." static',
    '  local-data: "www.example.test. 300 IN A 10.1.2.3"',
    '  local-data: "www.example.test. 300 IN AAAA fd00::7"',
    ...BIG_TXT.map((s) => `  local-data: "big.example.test. 300 IN TXT ${s}"`),
    'remote-control:', '  control-enable: no',
  ];
  fs.writeFileSync(conf, lines.join('\n') + '\n');
  const served = await startServer('unbound', ['-d', '-c', conf], { port: plain, readyPattern: /start of service/ });
  return {
    served, plain, tls, https, pki,
    async stop() { await served.stop(); fs.rmSync(pki.dir, { recursive: true, force: true }); },
  };
}

/** A second unbound, a resolver on its own port (UDP/TCP) forwarding everything over DNS over TLS
 *  (forward-tls-upstream) to `upstream`, verifying its certificate (CA, name localhost): the
 *  common DoT client, a resolver talking to its upstream. */
export async function startForwarder(upstream: Unbound): Promise<{ served: Served; port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const conf = path.join(upstream.pki.dir, 'forwarder.conf');
  fs.writeFileSync(conf, [
    'server:',
    '  verbosity: 1', `  interface: 127.0.0.1@${port}`, '  do-daemonize: no', '  chroot: ""', '  username: ""',
    `  directory: ${upstream.pki.dir}`, '  pidfile: ""', '  use-syslog: no', '  logfile: ""', '  do-ip6: no',
    '  access-control: 127.0.0.0/8 allow', '  do-not-query-localhost: no', `  tls-cert-bundle: ${upstream.pki.ca}`,
    '  module-config: "iterator"',
    // .test is a special-use name unbound answers itself unless told not to (RFC 6761)
    '  local-zone: "test." nodefault',
    'forward-zone:', '  name: "."', '  forward-tls-upstream: yes', `  forward-addr: 127.0.0.1@${upstream.tls}#localhost`,
    'remote-control:', '  control-enable: no',
  ].join('\n') + '\n');
  const served = await startServer('unbound', ['-d', '-c', conf], { port, readyPattern: /start of service/ });
  return { served, port, stop: () => served.stop() };
}
