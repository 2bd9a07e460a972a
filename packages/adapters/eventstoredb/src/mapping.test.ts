import {
  ANY,
  BACKWARDS,
  END,
  FORWARDS,
  NO_STREAM,
  type RecordedEvent,
  START,
  STREAM_EXISTS,
} from '@eventstore/db-client'
import { type EventId, type EventMetadata, expected, type NewEvent, unsafeId } from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import {
  CHECKPOINT_STREAM_PREFIX,
  checkpointData,
  checkpointStreamName,
  fromExpectedRevision,
  fromRecordedEvent,
  matchesPrefixes,
  positionFromCheckpointData,
  toAllPosition,
  toEventData,
  toExpectedRevision,
  toStreamReadPlan,
  versionOfRevision,
} from './mapping.js'

const metadata: EventMetadata = {
  actor: { kind: 'system', component: 'router' },
  correlationId: unsafeId('corr-7'),
  commandId: unsafeId('cmd-7'),
  occurredAt: unsafeId('2026-03-04T05:06:07.089Z'),
  causationId: unsafeId('cmd-6'),
}

const newEvent = (overrides: Partial<NewEvent> = {}): NewEvent => ({
  id: unsafeId<EventId>('0f8fad5b-d9cb-469f-a165-70867728950e'),
  type: 'ReferralRouted',
  schemaVersion: 2,
  data: { referralId: 'r-1', candidates: ['p-1', 'p-2'] },
  metadata,
  ...overrides,
})

/** A recorded event shaped exactly as the client's `convertGrpcRecord` builds it. */
const recorded = (overrides: Partial<Record<keyof RecordedEvent, unknown>> = {}): RecordedEvent =>
  ({
    streamId: 'pool-cardiology',
    id: '0f8fad5b-d9cb-469f-a165-70867728950e',
    revision: 4n,
    type: 'ReferralRouted',
    data: { referralId: 'r-1' },
    metadata: {
      eventId: '0F8FAD5B-D9CB-469F-A165-70867728950E',
      schemaVersion: 2,
      envelope: metadata,
      $correlationId: 'corr-7',
    },
    isJson: true,
    created: new Date(Date.UTC(2026, 2, 4, 5, 6, 7, 123)),
    position: { commit: 123_456n, prepare: 123_456n },
    ...overrides,
  }) as RecordedEvent

describe('expected version ↔ expected revision', () => {
  it('maps version n to revision n − 1 and the named expectations to the client constants', () => {
    expect(toExpectedRevision(expected.any)).toBe(ANY)
    expect(toExpectedRevision(expected.noStream)).toBe(NO_STREAM)
    expect(toExpectedRevision(expected.streamExists)).toBe(STREAM_EXISTS)
    expect(toExpectedRevision(expected.exact(0))).toBe(NO_STREAM)
    expect(toExpectedRevision(expected.exact(1))).toBe(0n)
    expect(toExpectedRevision(expected.exact(42))).toBe(41n)
  })

  it('maps back from revisions', () => {
    expect(fromExpectedRevision(ANY)).toEqual({ kind: 'any' })
    expect(fromExpectedRevision(NO_STREAM)).toEqual({ kind: 'no_stream' })
    expect(fromExpectedRevision(STREAM_EXISTS)).toEqual({ kind: 'stream_exists' })
    expect(fromExpectedRevision(0n)).toEqual({ kind: 'exact', version: 1 })
    expect(fromExpectedRevision(41n)).toEqual({ kind: 'exact', version: 42 })
  })

  it('round-trips every expectation except exact(0), which is the same as no_stream', () => {
    for (const e of [
      expected.any,
      expected.noStream,
      expected.streamExists,
      expected.exact(1),
      expected.exact(9),
    ]) {
      expect(fromExpectedRevision(toExpectedRevision(e))).toEqual(e)
    }
    expect(fromExpectedRevision(toExpectedRevision(expected.exact(0)))).toEqual(expected.noStream)
  })

  it('reads a current revision as a version: no_stream is 0, revision r is r + 1', () => {
    expect(versionOfRevision(NO_STREAM)).toBe(0)
    expect(versionOfRevision(0n)).toBe(1)
    expect(versionOfRevision(6n)).toBe(7)
  })
})

describe('readStream options → read plan', () => {
  it('reads forward from the start by default and from revision v − 1 for fromVersion v', () => {
    expect(toStreamReadPlan()).toEqual({
      direction: FORWARDS,
      fromRevision: START,
      maxCount: Number.MAX_SAFE_INTEGER,
    })
    expect(toStreamReadPlan({ fromVersion: 1 })).toMatchObject({ direction: FORWARDS, fromRevision: START })
    expect(toStreamReadPlan({ fromVersion: 3, maxCount: 2 })).toEqual({
      direction: FORWARDS,
      fromRevision: 2n,
      maxCount: 2,
    })
  })

  it('reads backward from the end by default and from revision v − 1 for fromVersion v', () => {
    expect(toStreamReadPlan({ direction: 'backward' })).toMatchObject({
      direction: BACKWARDS,
      fromRevision: END,
    })
    expect(toStreamReadPlan({ direction: 'backward', fromVersion: 4, maxCount: 2 })).toEqual({
      direction: BACKWARDS,
      fromRevision: 3n,
      maxCount: 2,
    })
  })

  it('answers empty reads without asking the server', () => {
    expect(toStreamReadPlan({ maxCount: 0 })).toBeNull()
    expect(toStreamReadPlan({ direction: 'backward', fromVersion: 0 })).toBeNull()
  })

  it('starts $all reads at START for 0n and at the event record {p, p} otherwise', () => {
    expect(toAllPosition(0n)).toBe(START)
    expect(toAllPosition(987n)).toEqual({ commit: 987n, prepare: 987n })
  })
})

describe('NewEvent → jsonEvent', () => {
  it('sends the id in lower case and keeps it, the schema version and the envelope in the metadata', () => {
    const event = newEvent({ id: unsafeId<EventId>('0F8FAD5B-D9CB-469F-A165-70867728950E') })
    const data = toEventData(event, 0)
    expect(data).toEqual(
      E.right({
        id: '0f8fad5b-d9cb-469f-a165-70867728950e',
        contentType: 'application/json',
        type: 'ReferralRouted',
        data: { referralId: 'r-1', candidates: ['p-1', 'p-2'] },
        metadata: {
          eventId: '0F8FAD5B-D9CB-469F-A165-70867728950E',
          schemaVersion: 2,
          envelope: metadata,
          $correlationId: 'corr-7',
          $causationId: 'cmd-6',
        },
      }),
    )
  })

  it('omits $causationId when the event has no cause', () => {
    const { causationId: _, ...withoutCause } = metadata
    const data = toEventData(newEvent({ metadata: withoutCause }), 0)
    if (E.isLeft(data) || !('metadata' in data.right)) throw new Error('mapping failed')
    expect(data.right.metadata).toHaveProperty('$correlationId', 'corr-7')
    expect(data.right.metadata).not.toHaveProperty('$causationId')
  })

  it('rejects ids that are not UUIDs, naming the position but not the id', () => {
    const r = toEventData(newEvent({ id: unsafeId<EventId>('evt-000001') }), 2)
    expect(r).toEqual(E.left(expect.objectContaining({ _tag: 'InvalidAppend' })))
    if (E.isLeft(r)) {
      expect(r.left.message).toContain('event 3')
      expect(r.left.message).not.toContain('evt-000001')
    }
  })

  it('rejects missing data and invalid schema versions', () => {
    expect(toEventData(newEvent({ data: undefined }), 0)).toMatchObject({
      _tag: 'Left',
      left: { _tag: 'InvalidAppend' },
    })
    expect(toEventData(newEvent({ schemaVersion: 0 }), 0)).toMatchObject({ left: { _tag: 'InvalidAppend' } })
  })
})

describe('recorded event → StoredEvent', () => {
  it('maps revision r to version r + 1, commit position to global position, created to recordedAt', () => {
    expect(fromRecordedEvent(recorded())).toEqual(
      E.right({
        id: '0F8FAD5B-D9CB-469F-A165-70867728950E',
        type: 'ReferralRouted',
        schemaVersion: 2,
        data: { referralId: 'r-1' },
        metadata,
        streamId: 'pool-cardiology',
        version: 5,
        globalPosition: 123_456n,
        recordedAt: '2026-03-04T05:06:07.123Z',
      }),
    )
  })

  it('round-trips what toEventData wrote', () => {
    const event = newEvent()
    const data = toEventData(event, 0)
    if (E.isLeft(data) || !('metadata' in data.right)) throw new Error('mapping failed')
    const back = fromRecordedEvent(recorded({ data: data.right.data, metadata: data.right.metadata }))
    expect(back).toMatchObject(
      E.right({ id: event.id, type: event.type, schemaVersion: 2, metadata, data: data.right.data }),
    )
  })

  it('refuses events without our envelope or position with a schema error that carries no data', () => {
    const foreign = fromRecordedEvent(recorded({ metadata: { note: 'Jane Doe' } }))
    expect(foreign).toMatchObject({ left: { _tag: 'StoreUnavailable', reason: 'schema' } })
    if (E.isLeft(foreign)) expect(foreign.left.message).not.toContain('Jane')
    expect(fromRecordedEvent(recorded({ isJson: false }))).toMatchObject({ left: { reason: 'schema' } })
    expect(fromRecordedEvent(recorded({ position: undefined }))).toMatchObject({ left: { reason: 'schema' } })
  })

  it('falls back to the recorded id when the metadata has none', () => {
    const { eventId: _, ...meta } = recorded().metadata as Record<string, unknown>
    expect(fromRecordedEvent(recorded({ metadata: meta }))).toMatchObject({
      right: { id: '0f8fad5b-d9cb-469f-a165-70867728950e' },
    })
  })
})

describe('stream filters and checkpoint streams', () => {
  it('never matches system streams and matches prefixes otherwise', () => {
    expect(matchesPrefixes('$referrals-checkpoint-x', undefined)).toBe(false)
    expect(matchesPrefixes('$stats-0.0.0.0:2113', ['$'])).toBe(false)
    expect(matchesPrefixes('referral-1', undefined)).toBe(true)
    expect(matchesPrefixes('referral-1', ['pool-', 'referral-'])).toBe(true)
    expect(matchesPrefixes('practice-1', ['pool-', 'referral-'])).toBe(false)
  })

  it('names checkpoint streams as system streams, encoding ids outside the safe alphabet', () => {
    expect(CHECKPOINT_STREAM_PREFIX.startsWith('$')).toBe(true)
    expect(checkpointStreamName('projection:referrals-v1')).toBe(
      '$referrals-checkpoint-projection:referrals-v1',
    )
    expect(checkpointStreamName('a b/c')).toBe('$referrals-checkpoint-a%20b%2Fc')
    expect(checkpointStreamName('a b/c')).not.toBe(checkpointStreamName('a_b/c'))
    expect(checkpointStreamName('x', 'ops-checkpoint-')).toBe('ops-checkpoint-x')
    expect(() => checkpointStreamName('')).toThrow(TypeError)
  })

  it('stores positions as decimal strings and reads them back', () => {
    const big = 2n ** 63n + 5n
    expect(checkpointData(big)).toEqual({ position: '9223372036854775813' })
    expect(positionFromCheckpointData(checkpointData(big))).toBe(big)
    expect(positionFromCheckpointData({ position: 12 })).toBeNull()
    expect(positionFromCheckpointData({ position: '-1' })).toBeNull()
    expect(positionFromCheckpointData(null)).toBeNull()
  })
})
