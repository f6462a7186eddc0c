// Samples → a pprof Profile (profile.proto, gzipped as `go tool pprof` expects), encoded with
// pprof-format. Labels carry pid/tid/thread name and, when known, trace_id/span_id.
import { gzipSync } from 'zlib';
import { Profile, StringTable, Function as PFunction, Location, Mapping, Sample, ValueType, Label, Line } from 'pprof-format';
import { Frame } from './symbolizer';
import { ProfileSample } from './model';

export function toPprof(samples: ProfileSample[], opts: { startMs: number; endMs: number; periodNs: number; service?: (pid: number) => string }): Profile {
  const st = new StringTable();
  const mappings = new Map<string, Mapping>();
  const functions = new Map<string, PFunction>();
  const locations = new Map<Frame, Location>();
  const mapping = (f: Frame): Mapping => {
    let m = mappings.get(f.module);
    if (!m) {
      m = new Mapping({ id: mappings.size + 1, filename: st.dedup(f.module), buildId: st.dedup(f.buildId), hasFunctions: true });
      mappings.set(f.module, m);
    }
    return m;
  };
  const location = (f: Frame): Location => {
    let l = locations.get(f);
    if (!l) {
      const key = `${f.module}\0${f.name}`;
      let fn = functions.get(key);
      if (!fn) { fn = new PFunction({ id: functions.size + 1, name: st.dedup(f.name), systemName: st.dedup(f.name), filename: st.dedup(f.module) }); functions.set(key, fn); }
      l = new Location({ id: locations.size + 1, mappingId: mapping(f).id, line: [new Line({ functionId: fn.id })] });
      locations.set(f, l);
    }
    return l;
  };
  const out: Sample[] = [];
  for (const s of samples) {
    const ids: number[] = [];
    for (let j = s.stack.length - 1; j >= 0; j--) ids.push(Number(location(s.stack[j]).id)); // leaf first
    const label = [
      new Label({ key: st.dedup('pid'), num: s.pid }),
      new Label({ key: st.dedup('thread_id'), num: s.tid }),
      new Label({ key: st.dedup('thread_name'), str: st.dedup(s.comm) }),
    ];
    if (opts.service) label.push(new Label({ key: st.dedup('service.name'), str: st.dedup(opts.service(s.pid)) }));
    if (s.link) {
      label.push(new Label({ key: st.dedup('trace_id'), str: st.dedup(s.link.traceId) }));
      label.push(new Label({ key: st.dedup('span_id'), str: st.dedup(s.link.spanId) }));
    }
    out.push(new Sample({ locationId: ids, value: [s.count, s.count * opts.periodNs], label }));
  }
  return new Profile({
    sampleType: [new ValueType({ type: st.dedup('samples'), unit: st.dedup('count') }), new ValueType({ type: st.dedup('cpu'), unit: st.dedup('nanoseconds') })],
    sample: out,
    mapping: [...mappings.values()],
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: st,
    timeNanos: BigInt(Math.round(opts.startMs)) * 1_000_000n,
    durationNanos: BigInt(Math.max(0, Math.round(opts.endMs - opts.startMs))) * 1_000_000n,
    periodType: new ValueType({ type: st.dedup('cpu'), unit: st.dedup('nanoseconds') }),
    period: opts.periodNs,
  });
}

export const encodePprof = (p: Profile): Buffer => gzipSync(p.encode());
