import {
  type AppendRequest,
  createInMemoryEventStore,
  type EventId,
  type EventMetadata,
  type EventStore,
  expected,
  type NewEvent,
  type StreamId,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import {
  createTwoStreamWriter,
  FOLLOW_UP_NAMESPACE,
  followUpEventId,
  type TwoStreamRule,
} from './process-manager.js'
import { uuidV5 } from './uuid.js'

const metadata: EventMetadata = {
  actor: { kind: 'system', component: 'router' },
  correlationId: unsafeId('corr-1'),
  commandId: unsafeId('cmd-1'),
  occurredAt: unsafeId('2026-01-02T03:04:05.678Z'),
}

const pool = unsafeId<StreamId>('pool-cardiology-north')
const referralStream = (id: string) => unsafeId<StreamId>(`referral-${id}`)

let n = 0
const routed = (referralId: string): NewEvent => ({
  id: unsafeId<EventId>(uuidV5(FOLLOW_UP_NAMESPACE, `test-primary-${++n}`)),
  type: 'ReferralRouted',
  schemaVersion: 1,
  data: { referralId, practiceId: 'p-7' },
  metadata,
})

/** ReferralRouted on a pool stream is followed by ReferralOffered on the referral's stream. */
const rule: TwoStreamRule = {
  primaryStreamPrefixes: ['pool-'],
  followUpOf: (primary) => {
    if (primary.type !== 'ReferralRouted') return null
    const { referralId, practiceId } = primary.data as { referralId: string; practiceId: string }
    return {
      streamId: referralStream(referralId),
      event: {
        type: 'ReferralOffered',
        schemaVersion: 1,
        data: { practiceId },
        metadata: { ...primary.metadata, causationId: primary.id },
      },
    }
  },
}

const must = async <A>(task: () => Promise<E.Either<{ readonly message: string }, A>>): Promise<A> => {
  const r = await task()
  if (E.isLeft(r)) throw new Error(r.left.message)
  return r.right
}

/** A store whose process "dies" right after the primary append: every follow-up append fails. */
const dyingAfterPrimary = (store: EventStore): EventStore => ({
  ...store,
  append: (request: AppendRequest) =>
    request.streamId.startsWith('referral-')
      ? async () => E.left({ _tag: 'StoreUnavailable', reason: 'unavailable', message: 'process killed' })
      : store.append(request),
})

describe('followUpEventId', () => {
  it('is a UUID v5 of the primary id, stable across calls and distinct per primary', () => {
    const id = followUpEventId('0f8fad5b-d9cb-469f-a165-70867728950e')
    expect(id).toBe(uuidV5(FOLLOW_UP_NAMESPACE, 'follow-up:0f8fad5b-d9cb-469f-a165-70867728950e'))
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(followUpEventId('other')).not.toBe(id)
  })
})

describe('createTwoStreamWriter', () => {
  it('writes the primary event, then the follow-up with the derived id and the primary as cause', async () => {
    const store = createInMemoryEventStore()
    const writer = createTwoStreamWriter(store, rule)
    const primary = routed('r1')
    const result = await must(
      writer.write({ streamId: pool, expected: expected.noStream, events: [primary] }),
    )
    expect(result.primary.version).toBe(1)
    expect(result.followUps).toEqual(['written'])
    const [followUp, ...rest] = await must(store.readStream(referralStream('r1')))
    expect(rest).toEqual([])
    expect(followUp).toMatchObject({
      id: followUpEventId(primary.id),
      type: 'ReferralOffered',
      data: { practiceId: 'p-7' },
      metadata: { causationId: primary.id, correlationId: 'corr-1' },
    })
  })

  it('repeating the whole write is a no-op on both streams', async () => {
    const store = createInMemoryEventStore()
    const writer = createTwoStreamWriter(store, rule)
    const request = { streamId: pool, expected: expected.noStream, events: [routed('r2')] }
    await must(writer.write(request))
    const again = await must(writer.write(request))
    expect(again.followUps).toEqual(['already-present'])
    expect(await must(store.readStream(pool))).toHaveLength(1)
    expect(await must(store.readStream(referralStream('r2')))).toHaveLength(1)
  })

  it('appends the follow-up after events other writers added to the second stream', async () => {
    const store = createInMemoryEventStore()
    const other: NewEvent = { ...routed('x'), type: 'ReferralSubmitted' }
    await must(store.append({ streamId: referralStream('r3'), expected: expected.noStream, events: [other] }))
    await must(
      createTwoStreamWriter(store, rule).write({
        streamId: pool,
        expected: expected.any,
        events: [routed('r3')],
      }),
    )
    expect((await must(store.readStream(referralStream('r3')))).map((e) => e.type)).toEqual([
      'ReferralSubmitted',
      'ReferralOffered',
    ])
  })

  it('ignores primary events that need no follow-up', async () => {
    const store = createInMemoryEventStore()
    const unrelated: NewEvent = { ...routed('r4'), type: 'PoolOpened' }
    const r = await must(
      createTwoStreamWriter(store, rule).write({
        streamId: pool,
        expected: expected.any,
        events: [unrelated],
      }),
    )
    expect(r.followUps).toEqual(['none-needed'])
    expect(await must(store.readStream(referralStream('r4')))).toEqual([])
  })

  it('killed between the two appends: repair completes the follow-up exactly once', async () => {
    const store = createInMemoryEventStore()
    const primary = routed('r5')
    const crashed = await createTwoStreamWriter(dyingAfterPrimary(store), rule).write({
      streamId: pool,
      expected: expected.noStream,
      events: [primary],
    })()
    expect(crashed).toMatchObject({ _tag: 'Left', left: { _tag: 'StoreUnavailable' } })
    expect(await must(store.readStream(pool))).toHaveLength(1)
    expect(await must(store.readStream(referralStream('r5')))).toEqual([])

    // A new process starts and repairs.
    const writer = createTwoStreamWriter(store, rule)
    const first = await must(writer.repair())
    expect(first).toMatchObject({ scanned: 1, written: 1 })
    const second = await must(writer.repair())
    expect(second).toMatchObject({ scanned: 1, written: 0 })
    const referral = await must(store.readStream(referralStream('r5')))
    expect(referral.map((e) => e.id)).toEqual([followUpEventId(primary.id)])
  })

  it('concurrent repairs by two processes still write each follow-up once', async () => {
    const store = createInMemoryEventStore()
    const dying = createTwoStreamWriter(dyingAfterPrimary(store), rule)
    for (const id of ['a', 'b', 'c']) {
      await dying.write({
        streamId: unsafeId<StreamId>(`pool-${id}`),
        expected: expected.noStream,
        events: [routed(id)],
      })()
    }
    const [x, y] = [createTwoStreamWriter(store, rule), createTwoStreamWriter(store, rule)]
    const reports = await Promise.all([must(x.repair({ pageSize: 1 })), must(y.repair({ pageSize: 2 }))])
    expect(reports.map((r) => r.scanned)).toEqual([3, 3])
    for (const id of ['a', 'b', 'c']) {
      const followUps = await must(store.readStream(referralStream(id)))
      expect(followUps.map((e) => e.type)).toEqual(['ReferralOffered'])
    }
  })

  it('repair resumes after a position and reports where it stopped', async () => {
    const store = createInMemoryEventStore()
    const dying = createTwoStreamWriter(dyingAfterPrimary(store), rule)
    await dying.write({ streamId: pool, expected: expected.noStream, events: [routed('r6'), routed('r7')] })()
    const [first] = await must(store.readStream(pool))
    const report = await must(
      createTwoStreamWriter(store, rule).repair({ after: first?.globalPosition ?? 0n }),
    )
    expect(report).toMatchObject({ scanned: 1, written: 1 })
    expect(await must(store.readStream(referralStream('r6')))).toEqual([])
    expect(await must(store.readStream(referralStream('r7')))).toHaveLength(1)
    const all = await must(store.readStream(pool))
    expect(report.position).toBe(all[1]?.globalPosition)
  })

  it('run(): a checkpointed subscription completes follow-ups left by a crash', async () => {
    const store = createInMemoryEventStore()
    await createTwoStreamWriter(dyingAfterPrimary(store), rule).write({
      streamId: pool,
      expected: expected.noStream,
      events: [routed('r8')],
    })()
    const errors: unknown[] = []
    const subscription = createTwoStreamWriter(store, rule).run('follow-ups', (e) => errors.push(e))
    await subscription.caughtUp()
    await subscription.stop()
    expect(errors).toEqual([])
    expect(await must(store.readStream(referralStream('r8')))).toHaveLength(1)
  })

  it('gives up with the conflict when the second stream keeps moving', async () => {
    const store = createInMemoryEventStore()
    const racing: EventStore = {
      ...store,
      // Another writer always appends between our read and our append.
      append: (request) => async () => {
        if (request.streamId.startsWith('referral-') && request.expected.kind === 'exact') {
          await store.append({
            streamId: request.streamId,
            expected: expected.any,
            events: [routed('noise')],
          })()
        }
        return store.append(request)()
      },
    }
    const r = await createTwoStreamWriter(racing, { ...rule, maxAttempts: 3 }).write({
      streamId: pool,
      expected: expected.noStream,
      events: [routed('r9')],
    })()
    expect(r).toMatchObject({ _tag: 'Left', left: { _tag: 'WrongExpectedVersion' } })
    expect(await must(store.readStream(referralStream('r9')))).toHaveLength(3)
  })
})
