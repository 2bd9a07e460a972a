import { type EventStore, type StreamId, unsafeId } from '@referrals/core'
import type { FastifyInstance } from 'fastify'
import * as t from 'io-ts'
import { route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'

const PROBE_STREAM = unsafeId<StreamId>('health-probe')

const Health = t.type({ status: t.literal('ok') })
const Ready = t.type({ status: t.literal('ready') })

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
    public: true,
    tags: ['operations'],
    summary: 'Liveness',
    response: Health,
    handler: async () => ({ status: 'ok' as const }),
  })
  route(app, {
    method: 'GET',
    url: '/ready',
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
