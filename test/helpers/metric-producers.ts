// What Signals.addProducer does for the agent's reader, for tests that wire a MeterProvider
// themselves: components register their collect functions here, and the reader (given this as
// one of its `metricProducers`) collects them with the SDK's own instruments.
import { MetricData, MetricProducer, CollectionResult } from '@opentelemetry/sdk-metrics';
import { emptyResource } from '@opentelemetry/resources';

export class TestProducers implements MetricProducer {
  private readonly list = new Set<() => MetricData[]>();

  addProducer(collect: () => MetricData[]): () => void {
    this.list.add(collect);
    return () => { this.list.delete(collect); };
  }

  async collect(): Promise<CollectionResult> {
    const metrics = [...this.list].flatMap((c) => c());
    return { resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length ? [{ scope: { name: 'telegen' }, metrics }] : [] }, errors: [] };
  }
}
