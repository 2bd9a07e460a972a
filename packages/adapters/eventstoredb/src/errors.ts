/**
 * EventStoreDB client errors as core `StoreError`s. Pure. Messages name the operation, the stream
 * and the client's error type; they never copy the server's message or any event data.
 */
import {
  AccessDeniedError,
  CancelledError,
  convertToCommandError,
  DeadlineExceededError,
  InvalidArgumentError,
  MaxAppendSizeExceededError,
  NotLeaderError,
  StreamDeletedError,
  TimeoutError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client'
import { describeExpected, type ExpectedVersion, type StoreError, type StreamId } from '@referrals/core'
import { versionOfRevision } from './mapping.js'

export type Operation = 'append' | 'read stream' | 'read all' | 'stream version' | 'subscribe' | 'checkpoint'

/** A WrongExpectedVersionError as the core conflict, with the stream's actual version (0 = no stream). */
export const wrongExpectedVersion = (
  error: WrongExpectedVersionError,
  streamId: StreamId,
  expected: ExpectedVersion,
): StoreError & { readonly _tag: 'WrongExpectedVersion' } => {
  const actual = versionOfRevision(error.actualVersion)
  return {
    _tag: 'WrongExpectedVersion',
    streamId,
    expected,
    actual,
    message: `expected ${describeExpected(expected)} for ${streamId}, actual version ${actual}`,
  }
}

const unavailable = (
  reason: 'unavailable' | 'timeout' | 'access_denied' | 'unknown',
  operation: Operation,
  what: string,
): StoreError => ({ _tag: 'StoreUnavailable', reason, message: `EventStoreDB ${operation} failed: ${what}` })

/**
 * Any failure other than a conflict. `WrongExpectedVersionError` is handled by the caller, which
 * needs the request to tell a conflict from an idempotent repeat; here it maps to a conflict with
 * an unknown expectation only as a safety net.
 */
export const toStoreError = (raw: unknown, operation: Operation): StoreError => {
  // Some client paths reject with the raw gRPC error (e.g. an append before any connection):
  // convert it the way the client converts its own.
  const error = raw instanceof Error ? convertToCommandError(raw) : raw
  if (error instanceof UnavailableError) return unavailable('unavailable', operation, 'server unavailable')
  if (error instanceof NotLeaderError) {
    return unavailable(
      'unavailable',
      operation,
      'the node is not the leader (connect with nodePreference=leader)',
    )
  }
  if (error instanceof DeadlineExceededError) return unavailable('timeout', operation, 'deadline exceeded')
  if (error instanceof TimeoutError) return unavailable('timeout', operation, 'timed out')
  if (error instanceof AccessDeniedError) return unavailable('access_denied', operation, 'access denied')
  if (error instanceof CancelledError) return unavailable('unavailable', operation, 'call cancelled')
  if (error instanceof StreamDeletedError) {
    return { _tag: 'InvalidAppend', message: `EventStoreDB ${operation} failed: the stream is deleted` }
  }
  if (error instanceof MaxAppendSizeExceededError) {
    return {
      _tag: 'InvalidAppend',
      message: `EventStoreDB ${operation} failed: the append exceeds the server's maximum of ${error.maxAppendSize} bytes`,
    }
  }
  if (error instanceof InvalidArgumentError) {
    return { _tag: 'InvalidAppend', message: `EventStoreDB ${operation} failed: invalid argument` }
  }
  if (error instanceof WrongExpectedVersionError) {
    return unavailable('unknown', operation, 'unexpected wrong-expected-version')
  }
  const type =
    typeof error === 'object' && error !== null && typeof (error as { type?: unknown }).type === 'string'
      ? (error as { type: string }).type
      : 'unrecognised error'
  return unavailable('unknown', operation, type)
}
