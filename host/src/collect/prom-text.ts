// Prometheus text exposition (0.0.4) and OpenMetrics 1.0 text parser: families with their TYPE,
// HELP and UNIT, samples with labels. Written from the two format specs; lines it cannot read
// are counted, not thrown, so one bad exporter line does not lose the rest of the scrape.

export type PromType = 'counter' | 'gauge' | 'histogram' | 'gaugehistogram' | 'summary' | 'info' | 'stateset' | 'unknown' | 'untyped';

export interface PromSample { name: string; labels: Record<string, string>; value: number }
export interface PromFamily { name: string; type: PromType; help?: string; unit?: string; samples: PromSample[] }
export interface PromParse { families: Map<string, PromFamily>; badLines: number; firstError?: string }

const TYPES = new Set<PromType>(['counter', 'gauge', 'histogram', 'gaugehistogram', 'summary', 'info', 'stateset', 'unknown', 'untyped']);
// Suffixes a sample may add to its family name, per type.
const SUFFIXES: Record<string, string[]> = {
  counter: ['_total', '_created'],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  gaugehistogram: ['_bucket', '_gsum', '_gcount'],
  summary: ['_sum', '_count', '_created'],
  info: ['_info'],
};

function parseValue(s: string): number {
  switch (s) {
    case '+Inf': case 'Inf': case '+inf': case 'inf': return Infinity;
    case '-Inf': case '-inf': return -Infinity;
    case 'NaN': case 'nan': return NaN;
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) && !/^[-+]?0x[0-9a-fA-F]+$/.test(s)) throw new Error(`bad value "${s}"`);
  return Number(s);
}

/** Reads `{a="x",b="y\"z"}` starting at line[i] === '{'; returns the labels and the index after '}'. */
function parseLabels(line: string, i: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return [labels, i + 1];
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(line.slice(i, i + 256));
    if (!m) throw new Error('bad label name');
    const key = m[0];
    i += key.length;
    while (line[i] === ' ') i++;
    if (line[i] !== '=') throw new Error(`expected = after label ${key}`);
    i++;
    while (line[i] === ' ') i++;
    if (line[i] !== '"') throw new Error(`label ${key} value must be quoted`);
    i++;
    let v = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) throw new Error('unterminated label value');
      if (c === '"') { i++; break; }
      if (c === '\\') {
        const n = line[i + 1];
        v += n === 'n' ? '\n' : n === '"' ? '"' : n === '\\' ? '\\' : `\\${n ?? ''}`;
        i += 2;
        continue;
      }
      v += c;
      i++;
    }
    labels[key] = v;
  }
}

function familyOf(sampleName: string, families: Map<string, PromFamily>): PromFamily | undefined {
  const exact = families.get(sampleName);
  if (exact && !SUFFIXES[exact.type]?.length) return exact;
  for (const [, f] of families) {
    for (const suf of SUFFIXES[f.type] ?? []) if (sampleName === f.name + suf) return f;
  }
  return exact;
}

export function parsePromText(text: string): PromParse {
  const families = new Map<string, PromFamily>();
  let badLines = 0;
  let firstError: string | undefined;
  const fam = (name: string) => {
    let f = families.get(name);
    if (!f) { f = { name, type: 'untyped', samples: [] }; families.set(name, f); }
    return f;
  };
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].replace(/\r$/, '');
    if (!line.trim()) continue;
    try {
      if (line.startsWith('#')) {
        const m = /^#\s+(HELP|TYPE|UNIT)\s+([A-Za-z_:][A-Za-z0-9_:]*)(?:\s+(.*))?$/.exec(line);
        if (!m) continue; // comment or "# EOF"
        const f = fam(m[2]);
        if (m[1] === 'TYPE') {
          const t = (m[3] ?? '').trim() as PromType;
          if (!TYPES.has(t)) throw new Error(`unknown type "${t}"`);
          f.type = t;
        } else if (m[1] === 'HELP') f.help = (m[3] ?? '').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
        else f.unit = (m[3] ?? '').trim() || undefined;
        continue;
      }
      const nm = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(line);
      if (!nm) throw new Error('bad metric name');
      let i = nm[0].length;
      let labels: Record<string, string> = {};
      if (line[i] === '{') [labels, i] = parseLabels(line, i);
      // value [timestamp] [# exemplar]
      const rest = line.slice(i).split(' # ')[0].trim().split(/\s+/);
      if (!rest[0]) throw new Error('missing value');
      const value = parseValue(rest[0]);
      const f = familyOf(nm[0], families) ?? fam(nm[0]);
      f.samples.push({ name: nm[0], labels, value });
    } catch (e) {
      badLines++;
      firstError ??= `line ${n + 1}: ${(e as Error).message}`;
    }
  }
  return { families, badLines, firstError };
}

/** Whether a sample of a family is cumulative (an OTLP monotonic sum) or a gauge. */
export function sampleIsCumulative(f: PromFamily, s: PromSample): boolean {
  if (s.name.endsWith('_created')) return false;
  switch (f.type) {
    case 'counter': return true;
    case 'histogram': case 'summary': return s.name.endsWith('_bucket') || s.name.endsWith('_count') || s.name.endsWith('_sum');
    default: return false;
  }
}
