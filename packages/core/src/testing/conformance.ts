import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EventMetadata } from '../envelope/metadata.js'
import { type EventId, type StreamId, unsafeId } from '../shared/ids.js'
import { Instant } from '../shared/time.js'
import {
  type AppendResult,
  type EventStore,
  type ExpectedVersion,
  expected,
  type NewEvent,
  type StoredEvent,
  type StoreError,
} from '../store/port.js'

/**
 * The event store contract (SPEC §2) as one suite every adapter runs: in-memory, PostgreSQL,
 * EventStoreDB. It opens one store for the whole suite and gives every test its own stream
 * category (`c<random>-…`), filtering `readAll` by that prefix, so it runs against a shared,
 * non-empty database. Event ids are UUIDs because some stores require them.
 */
/**
 * A random UUID v4 for test streams and event ids (the suite runs against shared databases, so
 * ids must not repeat across runs). Test support only: domain code gets ids from the IdGenerator.
 */
const uuid4 = (): string => {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16))
  b[6] = ((b[6] as number) & 0x0f) | 0x40
  b[8] = ((b[8] as number) & 0x3f) | 0x80
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

export const describeEventStoreConformance = (label: string, open: () => Promise<EventStore>): void => {
  describe(`event store conformance: ${label}`, () => {
    let store: EventStore
    beforeAll(async () => {
      store = await open()
    })
    afterAll(async () => {
      await store?.close()
    })

    const category = () => `c${uuid4().replaceAll('-', '').slice(0, 12)}`
    const streamIn = (cat: string, n: number | string) => unsafeId<StreamId>(`${cat}-${n}`)
    const freshStream = () => streamIn(category(), 1)
    const metadata: EventMetadata = {
      actor: {
        kind: 'user',
        userId: unsafeId('u-1'),
        platformRoles: ['admin'],
        memberships: [{ practiceId: unsafeId('p-1'), role: 'owner' }],
      },
      correlationId: unsafeId('corr-1'),
      commandId: unsafeId('cmd-1'),
      occurredAt: unsafeId<Instant>('2026-01-02T03:04:05.678Z'),
      causationId: unsafeId('cmd-0'),
    }
    const event = (type = 'Happened', data: unknown = { n: 1 }): NewEvent => ({
      id: unsafeId<EventId>(uuid4()),
      type,
      schemaVersion: 1,
      data,
      metadata,
    })
    const ok = async <A>(task: TaskEither<StoreError, A>): Promise<A> => {
      const r = await task()
      if (E.isLeft(r)) throw new Error(`expected success, got ${r.left._tag}: ${r.left.message}`)
      return r.right
    }
    const fail = async <A>(task: TaskEither<StoreError, A>): Promise<StoreError> => {
      const r = await task()
      if (E.isRight(r)) throw new Error('expected a store error, got success')
      return r.left
    }
    const append = (streamId: StreamId, exp: ExpectedVersion, events: readonly NewEvent[]) =>
      store.append({ streamId, expected: exp, events })

    describe('append with expected version', () => {
      it('creates a stream with no_stream; versions start at 1', async () => {
        const s = freshStream()
        const r = await ok(append(s, expected.noStream, [event(), event()]))
        expect(r.version).toBe(2)
        expect(await ok(store.streamVersion(s))).toBe(2)
      })

      it('rejects no_stream on an existing stream with the actual version', async () => {
        const s = freshStream()
        await ok(append(s, expected.noStream, [event(), event(), event()]))
        const e = await fail(append(s, expected.noStream, [event()]))
        expect(e._tag).toBe('WrongExpectedVersion')
        if (e._tag === 'WrongExpectedVersion') expect(e.actual).toBe(3)
        expect(await ok(store.streamVersion(s))).toBe(3)
      })

      it('accepts exact(n) at the current version and rejects a stale one with the actual version', async () => {
        const s = freshStream()
        await ok(append(s, expected.exact(0), [event()]))
        await ok(append(s, expected.exact(1), [event()]))
        const e = await fail(append(s, expected.exact(1), [event()]))
        expect(e).toMatchObject({ _tag: 'WrongExpectedVersion', actual: 2 })
        const ahead = await fail(append(s, expected.exact(5), [event()]))
        expect(ahead).toMatchObject({ _tag: 'WrongExpectedVersion', actual: 2 })
        expect(await ok(store.streamVersion(s))).toBe(2)
      })

      it('stream_exists fails on a missing stream with actual 0 and succeeds on an existing one', async () => {
        const s = freshStream()
        expect(await fail(append(s, expected.streamExists, [event()]))).toMatchObject({
          _tag: 'WrongExpectedVersion',
          actual: 0,
        })
        await ok(append(s, expected.any, [event()]))
        expect((await ok(append(s, expected.streamExists, [event()]))).version).toBe(2)
      })

      it('any appends whatever the version', async () => {
        const s = freshStream()
        await ok(append(s, expected.any, [event()]))
        expect((await ok(append(s, expected.any, [event()]))).version).toBe(2)
      })

      it('rejects an empty append and duplicate ids within one append, writing nothing', async () => {
        const s = freshStream()
        expect((await fail(append(s, expected.any, [])))._tag).toBe('InvalidAppend')
        const e = event()
        expect((await fail(append(s, expected.any, [e, e])))._tag).toBe('InvalidAppend')
        expect(await ok(store.streamVersion(s))).toBe(0)
      })

      it('lets exactly one of many concurrent appends at the same expected version win', async () => {
        const s = freshStream()
        await ok(append(s, expected.noStream, [event()]))
        const results = await Promise.all(
          Array.from({ length: 20 }, () => append(s, expected.exact(1), [event()])()),
        )
        expect(results.filter(E.isRight)).toHaveLength(1)
        for (const r of results.filter(E.isLeft))
          expect(r.left).toMatchObject({ _tag: 'WrongExpectedVersion' })
        expect(await ok(store.streamVersion(s))).toBe(2)
      })

      it('lets exactly one of many concurrent no_stream creates win', async () => {
        const s = freshStream()
        const results = await Promise.all(
          Array.from({ length: 20 }, () => append(s, expected.noStream, [event()])()),
        )
        expect(results.filter(E.isRight)).toHaveLength(1)
        expect(await ok(store.streamVersion(s))).toBe(1)
      })
    })

    describe('idempotent event ids', () => {
      it('re-appending stored ids is a no-op reporting where they were stored', async () => {
        const s = freshStream()
        const batch = [event(), event()]
        const first = await ok(append(s, expected.noStream, batch))
        await ok(append(s, expected.exact(2), [event()]))
        const again = await ok(append(s, expected.noStream, batch))
        expect(again.version).toBe(first.version)
        expect(again.position).toBe(first.position)
        expect(await ok(store.readStream(s))).toHaveLength(3)
      })

      it('rejects a request whose ids are only partly stored', async () => {
        const s = freshStream()
        const a = event()
        await ok(append(s, expected.noStream, [a]))
        expect((await fail(append(s, expected.any, [a, event()])))._tag).toBe('IdempotencyMismatch')
        expect(await ok(store.streamVersion(s))).toBe(1)
      })
    })

    describe('reading', () => {
      it('returns every envelope field as appended', async () => {
        const s = freshStream()
        const data = { text: 'ünïcødé ✓', nested: { list: [1, 'two', null, true] }, empty: {} }
        const e = { ...event('Typed', data), schemaVersion: 3 }
        const r = await ok(append(s, expected.noStream, [e]))
        const [stored] = await ok(store.readStream(s))
        expect(stored).toMatchObject({
          id: e.id,
          type: 'Typed',
          schemaVersion: 3,
          data,
          metadata,
          streamId: s,
          version: 1,
        })
        expect(stored?.globalPosition).toBe(r.position)
        expect(typeof stored?.globalPosition).toBe('bigint')
        expect(Instant.is(stored?.recordedAt)).toBe(true)
      })

      it('reads forward and backward, from a version, with a maximum count', async () => {
        const s = freshStream()
        const events = Array.from({ length: 6 }, (_, i) => event('N', { i }))
        await ok(append(s, expected.noStream, events.slice(0, 3)))
        await ok(append(s, expected.exact(3), events.slice(3)))
        const versions = (xs: readonly StoredEvent[]) => xs.map((x) => x.version)
        expect(versions(await ok(store.readStream(s)))).toEqual([1, 2, 3, 4, 5, 6])
        expect((await ok(store.readStream(s))).map((x) => x.id)).toEqual(events.map((e) => e.id))
        expect(versions(await ok(store.readStream(s, { fromVersion: 3, maxCount: 2 })))).toEqual([3, 4])
        expect(versions(await ok(store.readStream(s, { direction: 'backward' })))).toEqual([6, 5, 4, 3, 2, 1])
        expect(
          versions(await ok(store.readStream(s, { direction: 'backward', fromVersion: 4, maxCount: 2 }))),
        ).toEqual([4, 3])
        expect(await ok(store.readStream(s, { fromVersion: 7 }))).toEqual([])
      })

      it('reads a missing stream as empty with version 0', async () => {
        const s = freshStream()
        expect(await ok(store.readStream(s))).toEqual([])
        expect(await ok(store.streamVersion(s))).toBe(0)
      })

      it('reads all in a global order with strictly increasing positions, after a position', async () => {
        const cat = category()
        const [a, b] = [streamIn(cat, 'a'), streamIn(cat, 'b')]
        await ok(append(a, expected.noStream, [event('A1')]))
        await ok(append(b, expected.noStream, [event('B1')]))
        await ok(append(a, expected.exact(1), [event('A2'), event('A3')]))
        const all = await ok(store.readAll({ streamPrefixes: [`${cat}-`] }))
        expect(all.map((e) => e.type)).toEqual(['A1', 'B1', 'A2', 'A3'])
        for (let i = 1; i < all.length; i++) {
          expect((all[i] as StoredEvent).globalPosition > (all[i - 1] as StoredEvent).globalPosition).toBe(
            true,
          )
        }
        const after = await ok(
          store.readAll({ streamPrefixes: [`${cat}-`], after: (all[1] as StoredEvent).globalPosition }),
        )
        expect(after.map((e) => e.type)).toEqual(['A2', 'A3'])
        const page = await ok(store.readAll({ streamPrefixes: [`${cat}-`], maxCount: 2 }))
        expect(page.map((e) => e.type)).toEqual(['A1', 'B1'])
      })
    })

    describe('multi-stream append', () => {
      it('appends to several streams in one call where the store is atomic, else refuses or applies each', async () => {
        const cat = category()
        const [a, b] = [streamIn(cat, 'a'), streamIn(cat, 'b')]
        const requests = [
          { streamId: a, expected: expected.noStream, events: [event()] },
          { streamId: b, expected: expected.noStream, events: [event(), event()] },
        ]
        const r = await store.appendMany(requests)()
        if (store.capabilities.atomicMultiStreamAppend) {
          expect(E.isRight(r) && r.right.map((x: AppendResult) => x.version)).toEqual([1, 2])
        } else if (E.isLeft(r)) {
          // A store without multi-stream transactions may refuse the request outright…
          expect(r.left._tag).toBe('InvalidAppend')
          expect(await ok(store.streamVersion(a))).toBe(0)
        } else {
          // …or apply each request in order (no atomicity claimed).
          expect(r.right.map((x: AppendResult) => x.version)).toEqual([1, 2])
        }
      })

      it('applies none of the requests when one fails, where the store is atomic', async () => {
        if (!store.capabilities.atomicMultiStreamAppend) {
          console.warn(`${label}: multi-stream atomicity not claimed (process manager covers it)`)
          expect(store.capabilities.atomicMultiStreamAppend).toBe(false)
          return
        }
        const cat = category()
        const [a, b] = [streamIn(cat, 'a'), streamIn(cat, 'b')]
        await ok(append(b, expected.noStream, [event()]))
        const e = await fail(
          store.appendMany([
            { streamId: a, expected: expected.noStream, events: [event()] },
            { streamId: b, expected: expected.noStream, events: [event()] },
          ]),
        )
        expect(e).toMatchObject({ _tag: 'WrongExpectedVersion', streamId: b, actual: 1 })
        expect(await ok(store.streamVersion(a))).toBe(0)
        expect(await ok(store.streamVersion(b))).toBe(1)
      })
    })

    describe('subscriptions', () => {
      it('delivers in order, catches up, and resumes after its checkpoint without redelivery', async () => {
        const cat = category()
        const subscriptionId = `conformance-${cat}`
        const [a, b] = [streamIn(cat, 'a'), streamIn(cat, 'b')]
        await ok(append(a, expected.noStream, [event('A1'), event('A2')]))
        await ok(append(b, expected.noStream, [event('B1')]))
        const seen: string[] = []
        const first = store.subscribe({
          subscriptionId,
          streamPrefixes: [`${cat}-`],
          handler: async (e) => {
            seen.push(e.type)
          },
        })
        await first.caughtUp()
        expect(seen).toEqual(['A1', 'A2', 'B1'])
        await ok(append(b, expected.exact(1), [event('B2')]))
        await first.caughtUp()
        expect(seen).toEqual(['A1', 'A2', 'B1', 'B2'])
        await first.stop()

        await ok(append(a, expected.exact(2), [event('A3')]))
        const second = store.subscribe({
          subscriptionId,
          streamPrefixes: [`${cat}-`],
          handler: async (e) => {
            seen.push(e.type)
          },
        })
        await second.caughtUp()
        await second.stop()
        expect(seen).toEqual(['A1', 'A2', 'B1', 'B2', 'A3'])
      })

      it('delivers every event exactly once while appends race with it', async () => {
        const cat = category()
        const seen: string[] = []
        const sub = store.subscribe({
          subscriptionId: `conformance-race-${cat}`,
          streamPrefixes: [`${cat}-`],
          handler: async (e) => {
            seen.push(e.id)
          },
        })
        const ids: string[] = []
        // Interleave appends to matching and non-matching streams with the subscription's reads.
        await Promise.all(
          Array.from({ length: 40 }, async (_, i) => {
            const mine = event('Raced', { i })
            ids.push(mine.id)
            await ok(append(streamIn(cat, i % 4), expected.any, [mine]))
            await ok(append(freshStream(), expected.any, [event('Elsewhere')]))
          }),
        )
        await sub.caughtUp()
        await sub.stop()
        expect([...seen].sort()).toEqual([...ids].sort())
      })

      it('stops and reports when the handler fails', async () => {
        const cat = category()
        await ok(append(streamIn(cat, 'a'), expected.noStream, [event('A1')]))
        const errors: unknown[] = []
        const sub = store.subscribe({
          subscriptionId: `conformance-fail-${cat}`,
          streamPrefixes: [`${cat}-`],
          handler: async () => {
            throw new Error('handler broke')
          },
          onError: (e) => errors.push(e),
        })
        await sub.caughtUp()
        await sub.stop()
        expect(errors).toHaveLength(1)
      })
    })
  })
}
