// The registry of tracers started by the agent besides the socket tracer (DESIGN §Style 9: one
// list). Each entry is [name, factory]; a factory returns null when its tracer is disabled.
import { TracerFactory } from '../agent';
import { discoveryTracer } from '../discovery/tracer';
import { profileTracer } from './profile';
import { tlsTracer } from './tls';
import { tcpTracer } from './tcp';
import { xdpTracer } from './xdp';
import { fileioTracer } from './fileio';
import { securityTracer } from './security';
import { goTracer } from './go';
import { logsTracer } from './logs';

export const TRACERS: Array<[string, TracerFactory]> = [
  ['discovery', discoveryTracer],
  ['profile', profileTracer],
  ['tls', tlsTracer],
  ['tcp', tcpTracer],
  ['xdp', xdpTracer],
  ['fileio', fileioTracer],
  ['security', securityTracer],
  ['go', goTracer],
  ['logs', logsTracer],
];
