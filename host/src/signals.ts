// OpenTelemetry SDK providers for the agent's metrics and logs, behind the byte-bounded export
// queues. Tracers record with `signals.meter` (histograms, counters, gauges) and emit log records
// with `signals.logger`; spans go straight to the traces queue from the pipeline.
import * as os from 'os';
import { Meter } from '@opentelemetry/api';
import { Logger } from '@opentelemetry/api-logs';
import { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality, MetricData, MetricProducer } from '@opentelemetry/sdk-metrics';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { ExemplarSource, ExportQueues, QueueMetricExporter, QueueLogRecordProcessor } from './export';
import { agentVersion } from './paths';

export interface Signals {
  resource: Resource;
  meter: Meter;
  logger: Logger;
  /** Histogram points get their exemplars from here at each collection (analytics' RED series). */
  useExemplars(source: ExemplarSource): void;
  /** Metrics a component aggregates itself (cheaper per event than instruments), collected with
   *  the meter's at every export, in the meter's scope. Returns the function that removes it. */
  addProducer(collect: () => MetricData[]): () => void;
  /** Collects and exports metrics now (used at shutdown and in tests). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export function agentResource(serviceName?: string): Resource {
  return resourceFromAttributes({
    'service.name': serviceName ?? process.env.OTEL_SERVICE_NAME ?? 'telegen',
    'service.version': agentVersion(),
    'host.name': os.hostname(),
    'host.arch': os.arch(),
    'os.type': 'linux',
    'os.version': os.release(),
    'telemetry.sdk.name': 'telegen',
  });
}

export function createSignals(queues: ExportQueues, opts: { intervalMs: number; metricsBatchPoints: number; serviceName?: string }): Signals {
  const resource = agentResource(opts.serviceName);
  const exporter = queues.metrics
    ? Object.assign(new QueueMetricExporter(queues.metrics, opts.metricsBatchPoints), {
      selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    })
    : undefined;
  const scope = { name: 'telegen', version: agentVersion() };
  const producers = new Set<() => MetricData[]>();
  const producer: MetricProducer = {
    collect: async () => {
      const metrics: MetricData[] = [];
      const errors: unknown[] = [];
      for (const p of producers) { try { metrics.push(...p()); } catch (e) { errors.push(e); } }
      return { resourceMetrics: { resource, scopeMetrics: metrics.length ? [{ scope, metrics }] : [] }, errors };
    },
  };
  const readers = exporter
    ? [new PeriodicExportingMetricReader({
      exporter,
      metricProducers: [producer],
      exportIntervalMillis: opts.intervalMs,
      exportTimeoutMillis: Math.max(1000, Math.min(opts.intervalMs, 30_000)),
    })]
    : [];
  const meterProvider = new MeterProvider({ resource, readers });
  const loggerProvider = new LoggerProvider({ resource, processors: queues.logs ? [new QueueLogRecordProcessor(queues.logs)] : [] });
  return {
    resource,
    meter: meterProvider.getMeter('telegen', agentVersion()),
    logger: loggerProvider.getLogger('telegen', agentVersion()),
    useExemplars: (source) => { if (exporter) exporter.exemplars = source; },
    addProducer: (collect) => { producers.add(collect); return () => { producers.delete(collect); }; },
    flush: async () => { await meterProvider.forceFlush(); await loggerProvider.forceFlush(); },
    // Queues are shut down by the agent afterwards, bounded by its deadline: here the last
    // collection only goes into the metrics queue (log records are queued as they are emitted).
    shutdown: async () => {
      if (exporter) exporter.waitForDelivery = false;
      await meterProvider.forceFlush().catch(() => undefined);
    },
  };
}
