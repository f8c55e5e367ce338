/** `GET /metrics`: the Prometheus text exposition of the pipeline's own registry. */
import type { FastifyPluginAsync } from 'fastify';
import type { MetricsSources, PipelineMetrics } from './pipeline-metrics.ts';

export interface MetricsRoutesOptions extends MetricsSources {
  metrics: PipelineMetrics;
}

const metricsSchema = {
  summary: 'Prometheus metrics',
  description:
    'Pipeline counters (equal to /api/v1/stats), log lag, tick latency histograms, store write time, ' +
    'WebSocket and feed state, and Node.js process metrics, in the Prometheus text format. Every metric ' +
    'is described in docs/metrics.md.',
  tags: ['operations'],
  response: {
    200: {
      description: 'The Prometheus text exposition format, version 0.0.4.',
      content: {
        'text/plain': {
          schema: {
            type: 'string',
            examples: [
              '# HELP streamlines_ingest_ticks_accepted_total Valid, new ticks accepted into the log.\n' +
                '# TYPE streamlines_ingest_ticks_accepted_total counter\n' +
                'streamlines_ingest_ticks_accepted_total 1234\n',
            ],
          },
        },
      },
    },
  },
};

/** The encapsulated plugin serving `/metrics`; binds the metrics to the view and hub it is given. */
export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (app, options) => {
  const { metrics, view, hub, limits } = options;
  metrics.bind(limits === undefined ? { view, hub } : { view, hub, limits });

  app.get('/metrics', { schema: metricsSchema }, async (_request, reply) => {
    const body = await metrics.render();
    return reply.type(metrics.contentType).send(body);
  });
};
