import {
  type EventId,
  type EventMetadata,
  type Instant,
  type NewEvent,
  type StoreError,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'

/** Event fixtures for database tests. */
export const testMetadata: EventMetadata = {
  actor: { kind: 'system', component: 'test' },
  correlationId: unsafeId('corr-1'),
  commandId: unsafeId('cmd-1'),
  occurredAt: unsafeId<Instant>('2026-01-02T03:04:05.678Z'),
}

export const newEvent = (type = 'Happened', data: unknown = {}): NewEvent => ({
  id: unsafeId<EventId>(globalThis.crypto.randomUUID()),
  type,
  schemaVersion: 1,
  data,
  metadata: testMetadata,
})

export const uniqueCategory = (): string =>
  `t${globalThis.crypto.randomUUID().replaceAll('-', '').slice(0, 10)}`

export const ok = async <A>(task: TaskEither<StoreError, A>): Promise<A> => {
  const r = await task()
  if (E.isLeft(r)) throw new Error(`expected success, got ${r.left._tag}: ${r.left.message}`)
  return r.right
}

export const fail = async <A>(task: TaskEither<StoreError, A>): Promise<StoreError> => {
  const r = await task()
  if (E.isRight(r)) throw new Error('expected a store error, got success')
  return r.left
}
