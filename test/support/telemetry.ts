import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** A metric reader that collects on demand, as the SDK's own tests do. */
class OnDemandReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> { /* nothing buffered */ }
  protected async onShutdown(): Promise<void> { /* nothing held */ }
}

/** One metric data point: its attributes and value (a number, or a histogram's count and sum). */
export interface Point {
  attributes: Record<string, unknown>;
  value: number | { count: number; sum: number | undefined };
}

/**
 * A real OpenTelemetry SDK installed as the global tracer and meter provider, with the in-memory
 * span exporter, an on-demand metric reader and the AsyncLocalStorage context manager (so that
 * child spans nest as under the Node SDK). `uninstall()` puts the no-op globals back.
 */
export interface TestTelemetry {
  spans(): ReadableSpan[];
  /** The data points of metric `name` (none when it was never recorded). */
  points(name: string): Promise<Point[]>;
  uninstall(): Promise<void>;
}

export function installTelemetry(): TestTelemetry {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans: () => exporter.getFinishedSpans(),
    async points(name) {
      const { resourceMetrics } = await reader.collect();
      const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
      return (metric?.dataPoints ?? []).map((p: DataPoint<unknown>) => ({
        attributes: { ...p.attributes },
        value: typeof p.value === 'number' ? p.value : { count: (p.value as Histogram).count, sum: (p.value as Histogram).sum },
      }));
    },
    async uninstall() {
      trace.disable();
      metrics.disable();
      context.disable();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}
