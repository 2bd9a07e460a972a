import { domainError, Instant, ReferralId, unsafeId } from '@referrals/core'
import type { FastifyInstance } from 'fastify'
import * as t from 'io-ts'
import { requireActor } from './auth.js'
import { expectedVersionFor, setEtag } from './etag.js'
import { IntFromQuery, route } from './openapi/route.js'
import { httpProblem, ProblemError, toProblemError } from './problem.js'

/**
 * A tiny resource used by this package's tests to exercise the infrastructure end to end: the
 * codecs below are the single source of the OpenAPI schemas the tests look for.
 */
export const DemoItemInput = t.strict({
  name: t.string,
  quantity: t.Int,
  kind: t.keyof({ box: null, bag: null }),
  dueAt: t.union([Instant, t.null]),
  patient: t.union([t.undefined, t.strict({ name: t.string })]),
})

export const DemoItem = t.strict({
  id: ReferralId,
  name: t.string,
  quantity: t.Int,
  version: t.number,
})
export type DemoItem = t.TypeOf<typeof DemoItem>

export interface DemoState {
  readonly items: Map<string, DemoItem>
  /** Number of handler executions that changed state. */
  writes: number
  /** While set, `POST /demo/slow` waits for it. */
  gate: Promise<void> | undefined
  /** Number of `POST /demo/slow` handler entries (to know a request is in flight). */
  slowEntered: number
}

export const demoState = (): DemoState => ({ items: new Map(), writes: 0, gate: undefined, slowEntered: 0 })

/** Resolves once `POST /demo/slow` has been entered `count` times. */
export const slowEntered = async (state: DemoState, count = 1): Promise<void> => {
  while (state.slowEntered < count) await new Promise((resolve) => setTimeout(resolve, 5))
}

export const demoRoutes =
  (state: DemoState) =>
  async (app: FastifyInstance): Promise<void> => {
    route(app, {
      method: 'POST',
      url: '/demo/items',
      summary: 'POST /demo/items',
      tags: ['demo'],
      operationId: 'createDemoItem',
      body: DemoItemInput,
      response: DemoItem,
      handler: async ({ body }, request, reply) => {
        requireActor(request)
        state.writes += 1
        const item: DemoItem = {
          id: unsafeId<ReferralId>(`item-${state.writes}`),
          name: body.name,
          quantity: body.quantity,
          version: 1,
        }
        state.items.set(item.id, item)
        setEtag(reply, item.version)
        reply.header('location', `/demo/items/${item.id}`)
        return item
      },
    })

    route(app, {
      method: 'GET',
      url: '/demo/items/:id',
      operationId: 'getDemoItemsId',
      summary: 'GET /demo/items/:id',
      tags: ['demo'],
      params: t.strict({ id: ReferralId }),
      response: DemoItem,
      handler: async ({ params }, _request, reply) => {
        const item = state.items.get(params.id)
        if (item === undefined) throw new ProblemError(httpProblem('not_found', 'No such item.'))
        setEtag(reply, item.version)
        return item
      },
    })

    route(app, {
      method: 'GET',
      url: '/demo/items',
      operationId: 'getDemoItems',
      summary: 'GET /demo/items',
      tags: ['demo'],
      query: t.exact(t.partial({ limit: IntFromQuery, kind: t.keyof({ box: null, bag: null }) })),
      response: t.readonlyArray(DemoItem),
      handler: async ({ query }) => [...state.items.values()].slice(0, query.limit ?? 100),
    })

    route(app, {
      method: 'PUT',
      url: '/demo/items/:id/quantity',
      operationId: 'putDemoItemsIdQuantity',
      summary: 'PUT /demo/items/:id/quantity',
      tags: ['demo'],
      params: t.strict({ id: ReferralId }),
      body: t.strict({ quantity: t.Int }),
      response: DemoItem,
      handler: async ({ params, body }, request, reply) => {
        const item = state.items.get(params.id)
        if (item === undefined) throw new ProblemError(httpProblem('not_found', 'No such item.'))
        expectedVersionFor(request, item.version, { required: true })
        state.writes += 1
        const updated = { ...item, quantity: body.quantity, version: item.version + 1 }
        state.items.set(item.id, updated)
        setEtag(reply, updated.version)
        return updated
      },
    })

    route(app, {
      method: 'POST',
      url: '/demo/slow',
      operationId: 'postDemoSlow',
      summary: 'POST /demo/slow',
      tags: ['demo'],
      successStatus: 200,
      body: t.strict({ n: t.number }),
      response: t.strict({ n: t.number }),
      handler: async ({ body }) => {
        state.slowEntered += 1
        await state.gate
        state.writes += 1
        return { n: body.n }
      },
    })

    route(app, {
      method: 'POST',
      url: '/demo/fail',
      operationId: 'postDemoFail',
      summary: 'POST /demo/fail',
      tags: ['demo'],
      body: t.strict({ note: t.string }),
      handler: async ({ body }) => {
        throw new Error(`database said: value ${body.note} violates a constraint`)
      },
    })

    route(app, {
      method: 'POST',
      url: '/demo/store-error',
      operationId: 'postDemoStoreError',
      summary: 'POST /demo/store-error',
      tags: ['demo'],
      successStatus: 200,
      handler: async () => {
        // Handlers may also throw the plain error values of the core.
        throw { _tag: 'StoreUnavailable', reason: 'timeout', message: 'connect ETIMEDOUT' }
      },
    })

    route(app, {
      method: 'POST',
      url: '/demo/domain-error',
      operationId: 'postDemoDomainError',
      summary: 'POST /demo/domain-error',
      tags: ['demo'],
      successStatus: 200,
      body: t.strict({ code: t.string }),
      handler: async ({ body }) => {
        throw toProblemError(domainError(body.code, 'The rule does not allow this.'))
      },
    })
  }
