// An interval as an OTLP/JSON ExportProfilesServiceRequest in the shape of the development
// protocol (opentelemetry-proto profiles/v1development, 1.8 layout): one dictionary shared by
// every profile of the request (strings, functions, locations, mappings, stacks, attributes,
// links) and one Profile per process, its resource carrying service/process/container
// attributes. JSON encodes 64-bit integers as strings and bytes as hex for ids, like the
// other OTLP/JSON signals.
import { Frame } from './symbolizer';
import { IntervalProfile, ProfileSample } from './model';
import { ProcessInfo } from './process';

type AnyValue = { stringValue: string } | { intValue: string };
interface KeyValue { key: string; value: AnyValue }

class Dict {
  stringTable: string[] = [''];
  functionTable: Array<{ nameStrindex: number; systemNameStrindex: number; filenameStrindex: number }> = [{ nameStrindex: 0, systemNameStrindex: 0, filenameStrindex: 0 }];
  mappingTable: Array<{ filenameStrindex: number; attributeIndices: number[] }> = [{ filenameStrindex: 0, attributeIndices: [] }];
  locationTable: Array<{ mappingIndex: number; lines: Array<{ functionIndex: number }>; attributeIndices: number[] }> = [{ mappingIndex: 0, lines: [], attributeIndices: [] }];
  stackTable: Array<{ locationIndices: number[] }> = [{ locationIndices: [] }];
  attributeTable: Array<{ keyStrindex: number; value: AnyValue }> = [{ keyStrindex: 0, value: { stringValue: '' } }];
  linkTable: Array<{ traceId: string; spanId: string }> = [{ traceId: '', spanId: '' }];
  private s = new Map<string, number>([['', 0]]);
  private fn = new Map<string, number>();
  private mp = new Map<string, number>();
  private loc = new Map<Frame, number>();
  private st = new Map<string, number>();
  private at = new Map<string, number>();
  private ln = new Map<string, number>();

  str(v: string): number {
    let i = this.s.get(v);
    if (i === undefined) { i = this.stringTable.length; this.stringTable.push(v); this.s.set(v, i); }
    return i;
  }
  attr(key: string, value: string): number {
    const k = `${key}\0${value}`;
    let i = this.at.get(k);
    if (i === undefined) { i = this.attributeTable.length; this.attributeTable.push({ keyStrindex: this.str(key), value: { stringValue: value } }); this.at.set(k, i); }
    return i;
  }
  mapping(module: string, buildId: string): number {
    let i = this.mp.get(module);
    if (i === undefined) {
      i = this.mappingTable.length;
      this.mappingTable.push({ filenameStrindex: this.str(module), attributeIndices: buildId ? [this.attr('process.executable.build_id.gnu', buildId)] : [] });
      this.mp.set(module, i);
    }
    return i;
  }
  location(f: Frame): number {
    let i = this.loc.get(f);
    if (i === undefined) {
      const fk = `${f.module}\0${f.name}`;
      let fi = this.fn.get(fk);
      if (fi === undefined) { fi = this.functionTable.length; this.functionTable.push({ nameStrindex: this.str(f.name), systemNameStrindex: this.str(f.name), filenameStrindex: this.str(f.module) }); this.fn.set(fk, fi); }
      i = this.locationTable.length;
      this.locationTable.push({ mappingIndex: this.mapping(f.module, f.buildId), lines: [{ functionIndex: fi }], attributeIndices: [this.attr('profile.frame.type', f.kind === 'kernel' ? 'kernel' : f.kind === 'jit' ? 'jit' : 'native')] });
      this.loc.set(f, i);
    }
    return i;
  }
  stack(frames: Frame[]): number {
    // OTLP stacks list the leaf first.
    const idx: number[] = [];
    for (let j = frames.length - 1; j >= 0; j--) idx.push(this.location(frames[j]));
    const k = idx.join(',');
    let i = this.st.get(k);
    if (i === undefined) { i = this.stackTable.length; this.stackTable.push({ locationIndices: idx }); this.st.set(k, i); }
    return i;
  }
  link(traceId: string, spanId: string): number {
    const k = `${traceId}:${spanId}`;
    let i = this.ln.get(k);
    if (i === undefined) { i = this.linkTable.length; this.linkTable.push({ traceId, spanId }); this.ln.set(k, i); }
    return i;
  }
}

const kv = (key: string, v: string | number): KeyValue => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } });

export function resourceAttributes(p: ProcessInfo, hostName: string): KeyValue[] {
  const out = [kv('service.name', p.serviceName), kv('process.pid', p.pid), kv('host.name', hostName)];
  if (p.executableName) out.push(kv('process.executable.name', p.executableName));
  if (p.executablePath) out.push(kv('process.executable.path', p.executablePath));
  if (p.commandLine) out.push(kv('process.command_line', p.commandLine));
  if (p.containerId) out.push(kv('container.id', p.containerId));
  return out;
}

export function toOtlpProfiles(iv: IntervalProfile, proc: (pid: number, comm: string) => ProcessInfo, hostName: string, scopeVersion: string): object {
  const dict = new Dict();
  const byPid = new Map<number, ProfileSample[]>();
  for (const s of iv.samples) { let a = byPid.get(s.pid); if (!a) { a = []; byPid.set(s.pid, a); } a.push(s); }
  const resourceProfiles: object[] = [];
  const startNs = BigInt(Math.round(iv.startMs)) * 1_000_000n;
  const durNs = BigInt(Math.max(0, Math.round(iv.endMs - iv.startMs))) * 1_000_000n;
  for (const [pid, samples] of byPid) {
    const info = proc(pid, samples[0].comm);
    const profileId = Buffer.alloc(16);
    profileId.writeUInt32BE(pid, 0);
    profileId.writeBigUInt64BE(startNs, 8);
    resourceProfiles.push({
      resource: { attributes: resourceAttributes(info, hostName) },
      scopeProfiles: [{
        scope: { name: 'telegen.profile', version: scopeVersion },
        profiles: [{
          sampleType: { typeStrindex: dict.str('samples'), unitStrindex: dict.str('count') },
          periodType: { typeStrindex: dict.str('cpu'), unitStrindex: dict.str('nanoseconds') },
          period: String(iv.periodNs),
          timeUnixNano: String(startNs),
          durationNano: String(durNs),
          profileId: profileId.toString('hex'),
          samples: samples.map((s) => ({
            stackIndex: dict.stack(s.stack),
            values: [String(s.count)],
            attributeIndices: [dict.attr('thread.id', String(s.tid)), dict.attr('thread.name', s.comm)],
            ...(s.link ? { linkIndex: dict.link(s.link.traceId, s.link.spanId) } : {}),
          })),
        }],
      }],
    });
  }
  return {
    resourceProfiles,
    dictionary: {
      mappingTable: dict.mappingTable,
      locationTable: dict.locationTable,
      functionTable: dict.functionTable,
      linkTable: dict.linkTable,
      stringTable: dict.stringTable,
      attributeTable: dict.attributeTable,
      stackTable: dict.stackTable,
    },
  };
}
