import { type EventStore, type StreamId, unsafeId } from '@referrals/core'
import type { FastifyInstance } from 'fastify'
import * as t from 'io-ts'
import { nameSchema } from '../openapi/io-ts-schema.js'
import { route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'

const PROBE_STREAM = unsafeId<StreamId>('health-probe')

const Health = nameSchema(t.type({ status: t.literal('ok') }), 'Health')
const Ready = nameSchema(t.type({ status: t.literal('ready') }), 'Readiness')

export interface HealthRoutesOptions {
  readonly store: EventStore
  /** How long `/ready` waits for the store before answering 503. */
  readonly readyTimeoutMs?: number
}

/**
 * `/health`: the process is up (liveness). `/ready`: the event store answers a version query for
 * a probe stream within the timeout (readiness), otherwise 503.
 */
export const registerHealthRoutes = async (
  app: FastifyInstance,
  options: HealthRoutesOptions,
): Promise<void> => {
  const timeoutMs = options.readyTimeoutMs ?? 2000
  route(app, {
    method: 'GET',
    url: '/health',
    operationId: 'getHealth',
    description: 'The process is up (liveness); it does not look at the store.',
    public: true,
    tags: ['operations'],
    summary: 'Liveness',
    response: Health,
    handler: async () => ({ status: 'ok' as const }),
  })
  route(app, {
    method: 'GET',
    url: '/ready',
    operationId: 'getReadiness',
    description: 'The event store answers within the timeout (readiness); 503 otherwise.',
    public: true,
    tags: ['operations'],
    summary: 'Readiness: the event store is reachable',
    response: Ready,
    handler: async () => {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs)
      })
      try {
        const result = await Promise.race([
          options.store
            .streamVersion(PROBE_STREAM)()
            .catch(() => 'failed' as const),
          timeout,
        ])
        if (typeof result === 'string' || result._tag === 'Left') {
          throw new ProblemError(httpProblem('service_unavailable', 'The event store is not reachable.'))
        }
        return { status: 'ready' as const }
      } finally {
        clearTimeout(timer)
      }
    },
  })
}
