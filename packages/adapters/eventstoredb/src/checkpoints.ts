import {
  type EventStoreDBClient,
  jsonEvent,
  NO_STREAM,
  WrongExpectedVersionError,
} from '@eventstore/db-client'
import type { CheckpointStore, GlobalPosition } from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { toStoreError } from './errors.js'
import {
  CHECKPOINT_EVENT_TYPE,
  CHECKPOINT_STREAM_PREFIX,
  checkpointData,
  checkpointStreamName,
  positionFromCheckpointData,
} from './mapping.js'
import { readLast } from './reads.js'

export interface EventStoreDbCheckpointStoreOptions {
  /** Default `$referrals-checkpoint-`: a system stream, so a deployment needs `$admins` rights or an ACL. */
  readonly streamPrefix?: string
  /** Events kept per checkpoint stream (`$maxCount` stream metadata, set before the first save). Default 10. */
  readonly maxCount?: number
}

interface Head {
  readonly position: GlobalPosition
  readonly revision: bigint
}

const fail = (error: unknown): never => {
  throw new Error(toStoreError(error, 'checkpoint').message)
}

/**
 * Checkpoints kept in EventStoreDB itself: one stream per subscription, one `CheckpointSaved` event
 * per save. A save is a compare-and-swap: it appends with the expected revision of the event that
 * holds `previous` (NO_STREAM when `previous` is null), so of two workers saving from the same
 * checkpoint exactly one succeeds and the other gets `false`.
 */
export const createEventStoreDbCheckpointStore = (
  client: EventStoreDBClient,
  options: EventStoreDbCheckpointStoreOptions = {},
): CheckpointStore => {
  const prefix = options.streamPrefix ?? CHECKPOINT_STREAM_PREFIX
  const maxCount = options.maxCount ?? 10
  /** The last head this process saw per subscription: saves in a row need no read. */
  const known = new Map<string, Head>()

  const readHead = async (subscriptionId: string): Promise<Head | null> => {
    const last = await readLast(client, checkpointStreamName(subscriptionId, prefix), 'checkpoint')
    if (E.isLeft(last)) throw new Error(last.left.message)
    if (last.right === null) {
      known.delete(subscriptionId)
      return null
    }
    const position = positionFromCheckpointData(last.right.data)
    if (position === null) throw new Error(`checkpoint stream of ${subscriptionId} holds an unreadable event`)
    const head = { position, revision: last.right.revision }
    known.set(subscriptionId, head)
    return head
  }

  return {
    load: (subscriptionId) => readHead(subscriptionId).then((head) => head?.position ?? null),
    save: async (subscriptionId, previous, next) => {
      const cached = known.get(subscriptionId)
      const current =
        cached !== undefined && cached.position === previous ? cached : await readHead(subscriptionId)
      if ((current?.position ?? null) !== previous) return false
      const stream = checkpointStreamName(subscriptionId, prefix)
      try {
        // Before the first checkpoint, so a failure leaves nothing half done.
        if (current === null) await client.setStreamMetadata(stream, { maxCount })
        const result = await client.appendToStream(
          stream,
          jsonEvent({ type: CHECKPOINT_EVENT_TYPE, data: checkpointData(next) }),
          { expectedRevision: current === null ? NO_STREAM : current.revision },
        )
        if (!result.success) {
          known.delete(subscriptionId)
          return false
        }
        known.set(subscriptionId, { position: next, revision: result.nextExpectedRevision })
        return true
      } catch (error) {
        known.delete(subscriptionId)
        if (error instanceof WrongExpectedVersionError) return false
        return fail(error)
      }
    },
  }
}
