// OTLP common messages (opentelemetry/proto/common/v1/common.proto, resource/v1/resource.proto)
// written straight from SDK values, shared by the traces, logs and metrics encoders:
//   AnyValue             string=1 bool=2 int=3 double=4 array=5 kvlist=6 bytes=7
//   ArrayValue / KeyValueList   values=1
//   KeyValue             key=1 value=2
//   Resource             attributes=1 dropped_attributes_count=2
//   InstrumentationScope name=1 version=2
// Values map as otlp-transformer's toAnyValue does (integers → int, other numbers → double,
// Uint8Array → bytes, arrays and plain objects nested, anything else an empty AnyValue).
import type { Attributes, HrTime } from '@opentelemetry/api';
import { I64, LEN, VARINT, type Writer, writeDouble, writeHrTimeBody, writeInt64Varint, writeString, writeStringBody } from './proto-writer';

export function anyValue(w: Writer, v: unknown): void {
  switch (typeof v) {
    case 'string':
      w.tag(1, LEN);
      writeStringBody(w, v);
      return;
    case 'boolean':
      w.tag(2, VARINT);
      w.uvarint(v ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(v)) {
        w.tag(3, VARINT);
        writeInt64Varint(w, v);
      } else writeDouble(w, 4, v);
      return;
  }
  if (v instanceof Uint8Array) {
    w.tag(7, LEN);
    w.uvarint(v.length);
    w.raw(v);
  } else if (Array.isArray(v)) {
    w.begin(5);
    for (const x of v) {
      w.begin(1);
      anyValue(w, x);
      w.end();
    }
    w.end();
  } else if (v !== null && typeof v === 'object') {
    w.begin(6);
    attributes(w, 1, v as Record<string, unknown>);
    w.end();
  }
}

/** Repeated KeyValue under `field`, in the attribute object's key order. */
export function attributes(w: Writer, field: number, attrs: Readonly<Record<string, unknown>> | undefined): void {
  if (!attrs) return;
  for (const key in attrs) {
    w.begin(field);
    w.tag(1, LEN);
    writeStringBody(w, key);
    w.begin(2);
    anyValue(w, attrs[key]);
    w.end();
    w.end();
  }
}

/** A fixed64 nanosecond timestamp field from an HrTime. */
export function time(w: Writer, field: number, t: HrTime): void {
  w.tag(field, I64);
  writeHrTimeBody(w, t[0], t[1]);
}

/** A uint32 / enum field; proto3 leaves zeros out. */
export function uint(w: Writer, field: number, v: number | undefined): void {
  if (!v) return;
  w.tag(field, VARINT);
  w.uvarint(v);
}

export interface SdkResource {
  attributes: Attributes;
  schemaUrl?: string;
}
export interface SdkScope {
  name: string;
  version?: string;
  schemaUrl?: string;
}

/** Resource message under `field` (dropped_attributes_count is always 0 in the SDK). */
export function resource(w: Writer, field: number, r: SdkResource): void {
  w.begin(field);
  attributes(w, 1, r.attributes);
  w.end();
}

/** InstrumentationScope under `field`: name and version, as otlp-transformer writes it. */
export function scope(w: Writer, field: number, s: SdkScope): void {
  w.begin(field);
  writeString(w, 1, s.name);
  writeString(w, 2, s.version);
  w.end();
}

// ---- resource / scope grouping -------------------------------------------------------------------

interface Scoped {
  resource: SdkResource;
  instrumentationScope: SdkScope;
}
export interface ScopeGroup<T> {
  scope: SdkScope;
  items: T[];
}
export interface ResourceGroup<T> {
  resource: SdkResource;
  scopes: Array<ScopeGroup<T>>;
}

/**
 * The batch grouped as otlp-transformer groups it: resources by identity in order of first
 * appearance, scopes inside each by `scopeKey`, items in batch order. A batch that is one
 * resource and one scope (the agent's usual case: its spans share a resource object) is returned
 * as is, without maps or copies.
 */
export function groupByResourceScope<T extends Scoped>(batch: T[], scopeKey: (s: SdkScope) => unknown): Array<ResourceGroup<T>> {
  const r0 = batch[0].resource;
  const s0 = batch[0].instrumentationScope;
  let i = 1;
  while (i < batch.length && batch[i].resource === r0 && batch[i].instrumentationScope === s0) i++;
  if (i === batch.length) return [{ resource: r0, scopes: [{ scope: s0, items: batch }] }];
  const byResource = new Map<SdkResource, Map<unknown, ScopeGroup<T>>>();
  // Items share their scope object (the agent has one): its key (a string built per call) is
  // made once per run of the same object, not per item.
  let lastScope: SdkScope | undefined, lastKey: unknown;
  for (const item of batch) {
    let scopes = byResource.get(item.resource);
    if (!scopes) byResource.set(item.resource, (scopes = new Map()));
    const sc = item.instrumentationScope;
    if (sc !== lastScope) { lastScope = sc; lastKey = scopeKey(sc); }
    const key = lastKey;
    const g = scopes.get(key);
    if (g) g.items.push(item);
    else scopes.set(key, { scope: item.instrumentationScope, items: [item] });
  }
  const out: Array<ResourceGroup<T>> = [];
  for (const [res, scopes] of byResource) out.push({ resource: res, scopes: [...scopes.values()] });
  return out;
}

/**
 * The batch as repeated Resource{Spans,Logs} (field 1 of the request): resource=1, then one
 * Scope{Spans,Logs}=2 per scope (scope=1, items=2 written by `item`, schema_url=3), schema_url=3.
 * Traces and logs share this layout field for field.
 */
export function writeResourceGroups<T extends Scoped>(w: Writer, batch: T[], scopeKey: (s: SdkScope) => unknown, item: (w: Writer, x: T) => void): void {
  if (!batch.length) return;
  for (const g of groupByResourceScope(batch, scopeKey)) {
    w.begin(1);
    resource(w, 1, g.resource);
    for (const sg of g.scopes) {
      w.begin(2);
      scope(w, 1, sg.scope);
      for (const x of sg.items) item(w, x);
      writeString(w, 3, sg.scope.schemaUrl);
      w.end();
    }
    writeString(w, 3, g.resource.schemaUrl);
    w.end();
  }
}
