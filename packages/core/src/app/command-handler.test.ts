import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { describe, expect, it } from 'vitest'
import { PatientForgottenError } from '../privacy/port.js'
import type { CommandMeta, Decider } from '../shared/decider.js'
import { domainError } from '../shared/errors.js'
import { sequentialIds } from '../shared/id-generator.js'
import {
  type CommandId,
  type CorrelationId,
  type EventId,
  type MessageId,
  type PatientId,
  type ReferralId,
  type StreamId,
  unsafeId,
} from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import { expected } from '../store/port.js'
import { tombstoneCipher } from '../testing/tombstone-cipher.js'
import { createWorld } from '../testing/world.js'
import { type Aggregate, executeCommand, loadAggregate } from './command-handler.js'
import { defineEventCatalog } from './event-catalog.js'

// A deliberately tiny aggregate: a counter that refuses to go above a limit.
const CounterEvent = t.union([
  t.type({ type: t.literal('Incremented'), data: t.type({ by: t.number }) }),
  t.type({ type: t.literal('Reset'), data: t.type({}) }),
])
type CounterEvent = t.TypeOf<typeof CounterEvent>
type CounterCommand =
  | { type: 'Increment'; data: { by: number }; meta: CommandMeta }
  | { type: 'Noop'; meta: CommandMeta }

const counter: Decider<CounterCommand, CounterEvent, number> = {
  initialState: 0,
  evolve: (s, e) => (e.type === 'Incremented' ? s + e.data.by : 0),
  decide: (c, s) => {
    if (c.type === 'Noop') return E.right([])
    return s + c.data.by > 10
      ? E.left(domainError('counter.limit', 'limit exceeded'))
      : E.right([{ type: 'Incremented', data: { by: c.data.by } }])
  },
}

const stream = unsafeId<StreamId>('counter-1')
const aggregate = (sealed: string[] = []): Aggregate<CounterCommand, CounterEvent, number> => ({
  name: 'counter',
  decider: counter,
  // v1 of Incremented stored `amount`; v2 (current) calls it `by`.
  catalog: defineEventCatalog({
    codec: CounterEvent,
    schemaVersions: { Incremented: 2 },
    upcasters: [
      {
        type: 'Incremented',
        fromVersion: 1,
        upcast: (d) => ({ by: (d as { amount: number }).amount }),
      },
    ],
  }),
  sealer: {
    seal: async (ctx, data) => {
      sealed.push(ctx.eventId)
      return { wrapped: data }
    },
    open: async (_ctx, data) => (data as { wrapped: unknown }).wrapped,
  },
})

const meta = (n: number): CommandMeta => ({
  commandId: unsafeId(`cmd-${n}`),
  correlationId: unsafeId(`corr-${n}`),
  actor: { kind: 'system', component: 'test' },
  now: unsafeId<Instant>('2026-05-01T10:00:00.000Z'),
})
const increment = (by: number, n = 1): CounterCommand => ({ type: 'Increment', data: { by }, meta: meta(n) })

describe('executeCommand', () => {
  it('appends decided events with metadata from the command, sealed, and returns the new state', async () => {
    const store = createInMemoryEventStore()
    const sealed: string[] = []
    const r = await executeCommand(
      aggregate(sealed),
      { store, ids: sequentialIds('ev') },
      stream,
      increment(3, 7),
    )()
    expect(E.isRight(r) && r.right.state).toBe(3)
    const [stored] = store.snapshot()
    expect(stored).toMatchObject({
      id: 'ev-000001',
      type: 'Incremented',
      schemaVersion: 2,
      data: { wrapped: { by: 3 } },
      metadata: { commandId: 'cmd-7', correlationId: 'corr-7', occurredAt: '2026-05-01T10:00:00.000Z' },
    })
    expect(sealed).toEqual(['ev-000001'])
  })

  it('returns the domain error and writes nothing when a rule fails', async () => {
    const store = createInMemoryEventStore()
    const r = await executeCommand(aggregate(), { store, ids: sequentialIds() }, stream, increment(11))()
    expect(E.isLeft(r) && r.left).toMatchObject({ code: 'counter.limit' })
    expect(store.snapshot()).toHaveLength(0)
  })

  it('decides again on the new state when a concurrent writer got there first', async () => {
    const store = createInMemoryEventStore()
    const deps = { store, ids: sequentialIds() }
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => executeCommand(aggregate(), deps, stream, increment(3, n))()),
    )
    // 3 + 3 + 3 = 9 fits under the limit of 10; the 4th and 5th must be refused by the rule,
    // which only holds if every decision saw the state its append was conditional on.
    expect(results.filter(E.isRight)).toHaveLength(3)
    expect(results.filter(E.isLeft).map((r) => E.isLeft(r) && r.left)).toEqual([
      expect.objectContaining({ code: 'counter.limit' }),
      expect.objectContaining({ code: 'counter.limit' }),
    ])
  })

  it('fails with the conflict, without retrying, when the client pinned a stale version', async () => {
    const store = createInMemoryEventStore()
    const deps = { store, ids: sequentialIds() }
    await executeCommand(aggregate(), deps, stream, increment(1))()
    const r = await executeCommand(aggregate(), deps, stream, increment(1), { expectedVersion: 0 })()
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: 'WrongExpectedVersion', actual: 1 })
    expect(store.snapshot()).toHaveLength(1)
  })

  it('writes nothing for a command that decides no events', async () => {
    const store = createInMemoryEventStore()
    const r = await executeCommand(aggregate(), { store, ids: sequentialIds() }, stream, {
      type: 'Noop',
      meta: meta(1),
    })()
    expect(E.isRight(r) && r.right.produced).toEqual([])
    expect(store.snapshot()).toHaveLength(0)
  })
})

const storeRaw = async (
  store: ReturnType<typeof createInMemoryEventStore>,
  schemaVersion: number,
  data: unknown,
) => {
  const metadata = {
    actor: { kind: 'system', component: 'x' },
    correlationId: unsafeId<CorrelationId>('c'),
    commandId: unsafeId<CommandId>('c'),
    occurredAt: unsafeId<Instant>('2026-01-01T00:00:00.000Z'),
  } as const
  const event = { id: unsafeId<EventId>('raw-1'), type: 'Incremented', schemaVersion, data, metadata }
  await store.append({ streamId: stream, expected: expected.noStream, events: [event] })()
}

describe('loadAggregate', () => {
  it('upcasts a schema-version-1 event to the current shape on read, without rewriting it', async () => {
    const store = createInMemoryEventStore()
    await storeRaw(store, 1, { wrapped: { amount: 4 } })
    const loaded = await loadAggregate(aggregate(), store, stream)()
    expect(E.isRight(loaded) && loaded.right.events).toEqual([{ type: 'Incremented', data: { by: 4 } }])
    expect(store.snapshot()[0]?.data).toEqual({ wrapped: { amount: 4 } })
  })

  it('reports a stored event that matches no codec as a typed error naming paths, not values', async () => {
    const store = createInMemoryEventStore()
    await storeRaw(store, 2, { wrapped: { by: 'SECRET-VALUE' } })
    const loaded = await loadAggregate(aggregate(), store, stream)()
    expect(E.isLeft(loaded) && loaded.left).toMatchObject({ code: 'event.undecodable' })
    expect(JSON.stringify(loaded)).not.toContain('SECRET-VALUE')
  })

  it('rejects a schema version it has no upcaster for', async () => {
    const store = createInMemoryEventStore()
    await storeRaw(store, 9, { wrapped: { by: 1 } })
    const loaded = await loadAggregate(aggregate(), store, stream)()
    expect(E.isLeft(loaded) && loaded.left).toMatchObject({ code: 'event.unknown_schema_version' })
  })
})

describe('executeCommand and forgotten patients', () => {
  const forgettingAggregate = (
    failure: Error,
    sealed: string[] = [],
  ): Aggregate<CounterCommand, CounterEvent, number> => {
    const base = aggregate(sealed)
    return {
      ...base,
      sealer: {
        seal: async () => {
          throw failure
        },
        open: base.sealer?.open ?? (async (_ctx, data) => data),
      },
    }
  }

  it('turns PatientForgottenError from sealing into the domain error patient.forgotten and writes nothing', async () => {
    const store = createInMemoryEventStore()
    const r = await executeCommand(
      forgettingAggregate(new PatientForgottenError()),
      { store, ids: sequentialIds() },
      stream,
      increment(1),
    )()
    expect(E.isLeft(r) && r.left).toEqual({
      _tag: 'DomainError',
      code: 'patient.forgotten',
      message: 'This patient was forgotten; new patient data cannot be recorded',
    })
    expect(store.snapshot()).toHaveLength(0)
  })

  it('recognises the error by name too (another copy of the module), and still throws any other failure', async () => {
    const store = createInMemoryEventStore()
    const foreign = Object.assign(new Error('x'), { name: 'PatientForgottenError' })
    const r = await executeCommand(
      forgettingAggregate(foreign),
      { store, ids: sequentialIds() },
      stream,
      increment(1),
    )()
    expect(E.isLeft(r) && r.left).toMatchObject({ code: 'patient.forgotten' })
    await expect(
      executeCommand(
        forgettingAggregate(new Error('disk on fire')),
        { store, ids: sequentialIds() },
        stream,
        increment(1),
      )(),
    ).rejects.toThrow('disk on fire')
    expect(store.snapshot()).toHaveLength(0)
  })
})

describe('forgetting through the engine (test cipher with tombstones)', () => {
  it('refuses PostMessage on a forgotten patient referral and stores nothing; AcceptReferral and CancelReferral without a note still work', async () => {
    const cipher = tombstoneCipher()
    const w = await createWorld({ cipher })
    const specialist = await w.addSpecialist('spec-a', 1)
    await w.send('r1', { kind: 'direct', practiceId: specialist })
    const referralId = unsafeId<ReferralId>('r1')
    const count = async () => {
      const read = await w.store.readStream(unsafeId<StreamId>('referral-r1'))()
      return E.isRight(read) ? read.right.map((e) => e.type) : []
    }
    await cipher.forgetPatient(unsafeId<PatientId>('pat-r1'))
    const before = await count()

    const posted = await w.engine.referrals.execute(
      referralId,
      { type: 'PostMessage', data: { messageId: unsafeId<MessageId>('m-1'), phi: { body: 'Canary body' } } },
      await w.as(w.ownerOf(specialist)),
    )()
    expect(E.isLeft(posted) && posted.left).toMatchObject({ _tag: 'DomainError', code: 'patient.forgotten' })
    expect(JSON.stringify(posted)).not.toContain('Canary')
    expect(await count()).toEqual(before)

    await w.must(
      w.engine.referrals.execute(
        referralId,
        { type: 'AcceptReferral', data: {} },
        await w.as(w.ownerOf(specialist)),
      ),
    )
    await w.must(
      w.engine.referrals.execute(
        referralId,
        { type: 'CancelReferral', data: { reasonCode: 'no_longer_needed' } },
        await w.as(w.ownerOf('clinic')),
      ),
    )
    expect(await count()).toEqual([...before, 'ReferralAccepted', 'ReferralCancelled'])
    const loaded = await w.must(w.engine.referrals.load(referralId))
    expect(loaded.state.exists && loaded.state.status).toBe('cancelled')
    expect(loaded.events.map((e) => ('phi' in e.data ? e.data.phi : null)).filter((p) => p !== null)).toEqual(
      [{ redacted: true }, { redacted: true }],
    )
  })
})
