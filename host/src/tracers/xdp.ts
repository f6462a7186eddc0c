// XDP flow tracer: bpf/xdp.bpf.c counts packets and bytes per flow (one direction of a 5-tuple
// on one interface) in an LRU hash; this exports the biggest flows as cumulative counters with
// OTel network attributes, and optional header samples as log records. XDP attaches through bpf
// links, so an exit or a SIGKILL detaches it with the process.
// The points are built here at each collection (signals.addProducer), not by observable
// instruments: sdk-metrics keeps every attribute set it was ever given in its cumulative history
// (and its memo, up to 2000, then overflow), so flows that left the top (every connection has its
// own source port) were exported forever and new ones only as overflow. Here a collection holds
// exactly the current top `export_max_flows`; a flow's start time is when it entered the top.
import * as os from 'os';
import { Attributes, HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { TracerFactory, RunningTracer } from '../agent';
import { log } from '../log';
import { BpfObject, addrText } from './bpf-object';
import { cumulativeMetric, InstrumentInfo } from '../metrics/points';
import { tg_xdp_flow_key as K, tg_xdp_flow_value as V, tg_xdp_sample as S, tg_xdp_stat } from '../generated/xdp-layout';

const xlog = log.child({ component: 'tracer.xdp' });
const STAT_NAMES = Object.keys(tg_xdp_stat).filter((k) => k !== 'TG_XDP_STAT_MAX')
  .sort((a, b) => tg_xdp_stat[a as keyof typeof tg_xdp_stat] - tg_xdp_stat[b as keyof typeof tg_xdp_stat])
  .map((k) => `xdp_${k.slice('TG_XDP_STAT_'.length).toLowerCase()}`);
const PACKETS: InstrumentInfo = { name: 'telegen.network.flow.packets', unit: '{packet}', description: 'Packets per flow seen by XDP (ingress of the interface)', kind: 'observable-counter' };
const BYTES: InstrumentInfo = { name: 'telegen.network.flow.io', unit: 'By', description: 'Frame bytes per flow seen by XDP (ingress of the interface)', kind: 'observable-counter' };
const TRANSPORT: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmp', 132: 'sctp' };

export interface Flow { attrs: Attributes; packets: number; bytes: number }

/** Interface index → name, for the interfaces this host has now. */
function ifNames(): Map<number, string> {
  const m = new Map<number, string>();
  for (const name of Object.keys(os.networkInterfaces())) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const idx = Number(require('fs').readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8'));
      m.set(idx, name);
    } catch { /* gone */ }
  }
  return m;
}

export function parseFlow(k: Buffer, v: Buffer, names: Map<number, string>): Flow {
  const saddr = addrText(k, K.saddr);
  const proto = k[K.proto];
  const attrs: Attributes = {
    'source.address': saddr,
    'destination.address': addrText(k, K.daddr),
    'network.transport': TRANSPORT[proto] ?? String(proto),
    'network.type': saddr.includes(':') ? 'ipv6' : 'ipv4',
    'network.interface.name': names.get(k.readUInt32LE(K.ifindex)) ?? String(k.readUInt32LE(K.ifindex)),
  };
  if (proto === 6 || proto === 17) { attrs['source.port'] = k.readUInt16LE(K.sport); attrs['destination.port'] = k.readUInt16LE(K.dport); }
  return { attrs, packets: Number(v.readBigUInt64LE(V.packets)), bytes: Number(v.readBigUInt64LE(V.bytes)) };
}

export const xdpTracer: TracerFactory = (ctx) => {
  const cfg = ctx.cfg.tracers.xdp;
  if (!cfg.enabled || cfg.interfaces.length === 0) return null;
  const obj = new BpfObject('xdp', {
    rodata: { sample_every: cfg.sample_every },
    maxEntries: { tg_xdp_flows: cfg.flow_max, tg_xdp_ring: cfg.ring_bytes },
  });
  for (const ifname of cfg.interfaces) obj.attachAll(['tg_xdp_flow'], ifname);
  const rep = obj.report;
  for (const f of rep.failed) xlog.warn({ program: f.name, err: f.error }, 'XDP program did not attach; the rest keep running');
  if (!rep.attached.length) { obj.close(); throw new Error(`XDP attached nowhere: ${rep.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`); }

  let stopped = false;
  /** Flow (attributes as JSON) → when it entered the top: the start of its cumulative points. */
  let starts = new Map<string, HrTime>();
  ctx.signals.addProducer(() => {
    if (stopped) return [];
    const names = ifNames();
    const flows: Flow[] = [];
    for (const [k, v] of obj.entries('tg_xdp_flows')) flows.push(parseFlow(k, v, names));
    // Bounded cardinality: the biggest flows only.
    flows.sort((a, b) => b.bytes - a.bytes);
    const now = hrTime();
    const next = new Map<string, HrTime>();
    const packets = [], bytes = [];
    for (const f of flows.slice(0, cfg.export_max_flows)) {
      const key = JSON.stringify(f.attrs);
      const startTime = starts.get(key) ?? now;
      next.set(key, startTime);
      packets.push({ attributes: f.attrs, startTime, endTime: now, value: f.packets });
      bytes.push({ attributes: f.attrs, startTime, endTime: now, value: f.bytes });
    }
    starts = next;
    return packets.length ? [cumulativeMetric(PACKETS, packets), cumulativeMetric(BYTES, bytes)] : [];
  });

  let watch: { stop(): void } | undefined;
  let samples = 0;
  if (cfg.sample_every > 0) {
    obj.openRing('tg_xdp_ring');
    const drain = () => {
      const names = ifNames();
      for (const rec of obj.pollRing(1024)) {
        samples++;
        const captured = rec.readUInt32LE(S.captured);
        ctx.signals.logger.emit({
          severityNumber: SeverityNumber.DEBUG, severityText: 'DEBUG', body: 'packet header sample',
          attributes: {
            'event.name': 'telegen.xdp.sample',
            'network.interface.name': names.get(rec.readUInt32LE(S.ifindex)) ?? String(rec.readUInt32LE(S.ifindex)),
            'telegen.packet.length': rec.readUInt32LE(S.len),
            'telegen.packet.header': rec.subarray(S.data, S.data + captured).toString('hex'),
          },
        });
      }
    };
    // poll_ms after the first sample, not every poll_ms.
    watch = obj.watchRing(drain, cfg.poll_ms);
  }
  ctx.metrics.addCollector((m) => {
    if (stopped) return;
    obj.collect(m, 'xdp', { map: 'tg_xdp_stats', names: STAT_NAMES });
    m.set('telegen_tracer_events_handled_total', 'Kernel events a tracer turned into signals', samples, { tracer: 'xdp' }, 'counter');
  });
  const r: RunningTracer = {
    name: 'xdp',
    detail: `attached on ${rep.attached.map((a) => a.split('@')[1]).join(', ')}${rep.failed.length ? `; failed: ${rep.failed.map((f) => f.name).join(', ')}` : ''}`,
    stop: () => {
      watch?.stop();
      stopped = true;
      obj.close();
    },
  };
  return r;
};
