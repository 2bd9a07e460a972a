import {
  AccessDeniedError,
  convertToCommandError,
  DeadlineExceededError,
  MaxAppendSizeExceededError,
  NO_STREAM,
  NotLeaderError,
  StreamDeletedError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client'
import { expected, type StreamId, unsafeId } from '@referrals/core'
import { describe, expect, it } from 'vitest'
import { toStoreError, wrongExpectedVersion } from './errors.js'

const stream = unsafeId<StreamId>('referral-r1')

/**
 * A gRPC ServiceError as @grpc/grpc-js hands it to the client: status code, details, and trailing
 * metadata whose `getMap()` carries EventStoreDB's `exception` key. The client's own
 * `convertToCommandError` turns it into its error classes, exactly as on a live connection.
 */
const serviceError = (code: number, details: string, trailers: Record<string, string> = {}) =>
  Object.assign(new Error(`${code} ${details}`), { code, details, metadata: { getMap: () => trailers } })

/** A message a server (or a bug) could put in an error; it must never reach a StoreError. */
const SECRET = 'patient Jane Doe, DOB 1970-01-01'

describe('WrongExpectedVersionError → WrongExpectedVersion', () => {
  it('reports the actual version as revision + 1 (error built as the append call builds it)', () => {
    const error = new WrongExpectedVersionError(undefined, { streamName: stream, expected: 1n, current: 4n })
    expect(wrongExpectedVersion(error, stream, expected.exact(2))).toEqual({
      _tag: 'WrongExpectedVersion',
      streamId: stream,
      expected: expected.exact(2),
      actual: 5,
      message: 'expected version 2 for referral-r1, actual version 5',
    })
  })

  it('reports a missing stream as actual version 0', () => {
    const error = new WrongExpectedVersionError(undefined, {
      streamName: stream,
      expected: 'stream_exists',
      current: NO_STREAM,
    })
    expect(wrongExpectedVersion(error, stream, expected.streamExists)).toMatchObject({ actual: 0 })
  })

  it('reads the actual revision from gRPC trailers the way the client does', () => {
    const withActual = convertToCommandError(
      serviceError(9, SECRET, {
        exception: 'wrong-expected-version',
        'stream-name': stream,
        'expected-version': '0',
        'actual-version': '2',
      }),
    )
    expect(withActual).toBeInstanceOf(WrongExpectedVersionError)
    expect(
      wrongExpectedVersion(withActual as WrongExpectedVersionError, stream, expected.exact(1)),
    ).toMatchObject({
      actual: 3,
    })
    const noStream = convertToCommandError(
      serviceError(9, SECRET, {
        exception: 'wrong-expected-version',
        'stream-name': stream,
        'expected-version': '0',
      }),
    ) as WrongExpectedVersionError
    expect(noStream.actualVersion).toBe(NO_STREAM)
    const mapped = wrongExpectedVersion(noStream, stream, expected.exact(1))
    expect(mapped).toMatchObject({ actual: 0 })
    expect(mapped.message).not.toContain('Jane')
  })
})

describe('infrastructure errors → StoreUnavailable', () => {
  const cases = [
    ['UNAVAILABLE (14)', serviceError(14, SECRET), UnavailableError, 'unavailable'],
    ['DEADLINE_EXCEEDED (4)', serviceError(4, SECRET), DeadlineExceededError, 'timeout'],
    ['UNAUTHENTICATED (16)', serviceError(16, SECRET), AccessDeniedError, 'access_denied'],
    [
      'access-denied trailer',
      serviceError(7, SECRET, { exception: 'access-denied' }),
      AccessDeniedError,
      'access_denied',
    ],
    [
      'not-leader trailer',
      serviceError(5, SECRET, {
        exception: 'not-leader',
        'leader-endpoint-host': 'node2.esdb.local',
        'leader-endpoint-port': '2113',
      }),
      NotLeaderError,
      'unavailable',
    ],
  ] as const

  for (const [name, grpcError, expectedClass, reason] of cases) {
    it(`${name} → ${reason}, converted as the client converts and with no server text`, () => {
      const clientError = convertToCommandError(grpcError)
      expect(clientError).toBeInstanceOf(expectedClass)
      const mapped = toStoreError(clientError, 'append')
      expect(mapped).toMatchObject({ _tag: 'StoreUnavailable', reason })
      expect(mapped.message).toMatch(/^EventStoreDB append failed: /)
      expect(mapped.message).not.toContain('Jane')
    })
  }

  it('converts a raw gRPC error the client passed through unconverted', () => {
    expect(toStoreError(serviceError(14, SECRET), 'read stream')).toMatchObject({
      _tag: 'StoreUnavailable',
      reason: 'unavailable',
      message: 'EventStoreDB read stream failed: server unavailable',
    })
  })

  it('tells the operator to prefer the leader on NotLeader', () => {
    const notLeader = convertToCommandError(
      serviceError(5, SECRET, {
        exception: 'not-leader',
        'leader-endpoint-host': 'n2',
        'leader-endpoint-port': '2113',
      }),
    )
    expect(toStoreError(notLeader, 'append').message).toContain('nodePreference=leader')
  })

  it('maps anything unrecognised to reason unknown without its message', () => {
    const mapped = toStoreError(new Error(SECRET), 'subscribe')
    expect(mapped).toEqual({
      _tag: 'StoreUnavailable',
      reason: 'unknown',
      message: 'EventStoreDB subscribe failed: unrecognised error',
    })
    expect(toStoreError('a string', 'append')).toMatchObject({ reason: 'unknown' })
  })
})

describe('request errors → InvalidAppend', () => {
  it('maps a deleted stream and an oversized append', () => {
    expect(toStoreError(StreamDeletedError.fromStreamName(stream), 'append')).toMatchObject({
      _tag: 'InvalidAppend',
    })
    const tooBig = toStoreError(MaxAppendSizeExceededError.fromMaxAppendSize(1_048_576), 'append')
    expect(tooBig).toMatchObject({ _tag: 'InvalidAppend' })
    expect(tooBig.message).toContain('1048576')
  })
})
