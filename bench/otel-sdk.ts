// An OpenTelemetry SDK as a host would install it (tracer provider with a batch span processor,
// meter provider with a periodic reader, the AsyncLocalStorage context manager), exporting to
// nowhere: the benchmark measures what recording costs, not a collector's network. Used by the
// bench children when a row is "+otel".
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';

const done = (callback: (result: ExportResult) => void): void => callback({ code: ExportResultCode.SUCCESS });

/** Installs the SDK globally; the package under test records into it from then on. */
export function installOtelSdk(): void {
  const spans: SpanExporter = { export: (_spans, callback) => done(callback), shutdown: async () => {} };
  const metricExporter: PushMetricExporter = { export: (_metrics, callback) => done(callback), forceFlush: async () => {}, shutdown: async () => {} };
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] }));
  metrics.setGlobalMeterProvider(new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 10_000 })],
  }));
}
