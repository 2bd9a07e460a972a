import {
  type AppendRequest,
  type EventId,
  type EventMetadata,
  type EventStore,
  expected,
  type StreamId,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest'
import { createEventStoreDbEventStore } from './event-store.js'

const metadata: EventMetadata = {
  actor: { kind: 'system', component: 'test' },
  correlationId: unsafeId('corr-1'),
  commandId: unsafeId('cmd-1'),
  occurredAt: unsafeId('2026-01-02T03:04:05.678Z'),
}

const request = (overrides: Partial<AppendRequest> = {}): AppendRequest => ({
  streamId: unsafeId<StreamId>('referral-r1'),
  expected: expected.noStream,
  events: [
    {
      id: unsafeId<EventId>('0f8fad5b-d9cb-469f-a165-70867728950e'),
      type: 'ReferralSubmitted',
      schemaVersion: 1,
      data: { reason: 'chest pain' },
      metadata,
    },
  ],
  ...overrides,
})

describe('createEventStoreDbEventStore', () => {
  it('satisfies the core EventStore port', () => {
    expectTypeOf(createEventStoreDbEventStore).returns.toEqualTypeOf<EventStore>()
    const store: EventStore = createEventStoreDbEventStore({
      connectionString: 'esdb://127.0.0.1:1?tls=false',
    })
    expect(store.capabilities.atomicMultiStreamAppend).toBe(false)
    return store.close()
  })

  // A real client pointed at a closed loopback port: no server, but every error below is produced
  // by @eventstore/db-client itself.
  describe('with a real client and no server', () => {
    const store = createEventStoreDbEventStore({
      connectionString: 'esdb://127.0.0.1:1?tls=false&defaultDeadline=3000',
    })
    afterAll(() => store.close())

    it('answers an append with StoreUnavailable(unavailable) and no event data in the message', async () => {
      const r = await store.append(request())()
      expect(r).toMatchObject({ _tag: 'Left', left: { _tag: 'StoreUnavailable', reason: 'unavailable' } })
      if (E.isLeft(r)) expect(r.left.message).not.toContain('chest')
    })

    it('answers reads with StoreUnavailable', async () => {
      expect(await store.readStream(unsafeId<StreamId>('referral-r1'))()).toMatchObject({
        left: { _tag: 'StoreUnavailable', reason: 'unavailable' },
      })
      expect(await store.streamVersion(unsafeId<StreamId>('referral-r1'))()).toMatchObject({
        left: { _tag: 'StoreUnavailable' },
      })
      expect(await store.readAll({ streamPrefixes: ['referral-'] })()).toMatchObject({
        left: { _tag: 'StoreUnavailable' },
      })
    })

    it('reports a subscription that cannot reach the server through onError, once', async () => {
      const errors: unknown[] = []
      const subscription = store.subscribe({
        subscriptionId: 'projection-1',
        handler: async () => undefined,
        onError: (e) => errors.push(e),
      })
      await subscription.caughtUp().catch(() => undefined)
      await subscription.stop()
      expect(errors).toHaveLength(1)
      // Loading the checkpoint is the first call to fail.
      expect(String(errors[0])).toBe('Error: EventStoreDB checkpoint failed: server unavailable')
    })
  })

  describe('checks requests before any I/O', () => {
    const store = createEventStoreDbEventStore({ connectionString: 'esdb://127.0.0.1:1?tls=false' })
    afterAll(() => store.close())

    it('rejects event ids that are not UUIDs', async () => {
      const bad = request({
        events: [{ ...(request().events[0] as AppendRequest['events'][0]), id: unsafeId('evt-1') }],
      })
      expect(await store.append(bad)()).toMatchObject({ left: { _tag: 'InvalidAppend' } })
    })

    it('rejects two ids that are the same UUID in different case', async () => {
      const [e] = request().events as AppendRequest['events']
      if (e === undefined) throw new Error('fixture')
      const twice = request({ events: [e, { ...e, id: unsafeId<EventId>(e.id.toUpperCase()) }] })
      expect(await store.append(twice)()).toMatchObject({ left: { _tag: 'InvalidAppend' } })
    })

    it('rejects empty appends and invalid stream ids', async () => {
      expect(await store.append(request({ events: [] }))()).toMatchObject({ left: { _tag: 'InvalidAppend' } })
      expect(await store.append(request({ streamId: unsafeId('$all') }))()).toMatchObject({
        left: { _tag: 'InvalidAppend' },
      })
    })

    it('rejects multi-stream appendMany by default, since it cannot be atomic', async () => {
      const r = await store.appendMany([request(), request({ streamId: unsafeId<StreamId>('pool-p1') })])()
      expect(r).toMatchObject({ left: { _tag: 'InvalidAppend' } })
      if (E.isLeft(r)) expect(r.left.message).toContain('atomic')
    })

    it('answers an empty appendMany with no results', async () => {
      expect(await store.appendMany([])()).toEqual(E.right([]))
    })
  })
})
