import * as E from 'fp-ts/lib/Either.js'
import type { AppendRequest, ExpectedVersion, StoreError } from './port.js'

/** Does a stream at `actual` version satisfy `expected`? The one definition every adapter shares. */
export const expectedVersionHolds = (expected: ExpectedVersion, actual: number): boolean => {
  switch (expected.kind) {
    case 'any':
      return true
    case 'no_stream':
      return actual === 0
    case 'stream_exists':
      return actual > 0
    case 'exact':
      return actual === expected.version
  }
}

export const describeExpected = (expected: ExpectedVersion): string =>
  expected.kind === 'exact' ? `version ${expected.version}` : expected.kind

/**
 * Checks an append request's shape before any I/O: a valid stream id, at least one event, no
 * duplicate event ids, a non-negative integer expected version. Messages name the rule, never data.
 */
export const checkRequestShape = (
  request: AppendRequest,
  isStreamId: (s: string) => boolean,
): E.Either<StoreError, void> => {
  if (!isStreamId(request.streamId)) return E.left({ _tag: 'InvalidAppend', message: 'invalid stream id' })
  if (request.events.length === 0) {
    return E.left({ _tag: 'InvalidAppend', message: `append to ${request.streamId} has no events` })
  }
  if (new Set(request.events.map((e) => e.id)).size !== request.events.length) {
    return E.left({ _tag: 'InvalidAppend', message: `append to ${request.streamId} repeats an event id` })
  }
  const ev = request.expected
  if (ev.kind === 'exact' && !(Number.isSafeInteger(ev.version) && ev.version >= 0)) {
    return E.left({ _tag: 'InvalidAppend', message: 'expected version must be a non-negative integer' })
  }
  return E.right(undefined)
}
