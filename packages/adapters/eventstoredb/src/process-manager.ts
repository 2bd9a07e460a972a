/**
 * Multi-stream updates without transactions. EventStoreDB appends to one stream at a time, so an
 * update that touches two streams (a pool stream's `ReferralRouted` and the referral's own stream)
 * is written as a primary event followed by a follow-up event:
 *
 * 1. the primary event is appended to its stream (with the decider's expected version);
 * 2. the follow-up is appended to the second stream with an id derived from the primary event's id
 *    (UUID v5), after checking that the id is not already there — so repeating step 2 any number
 *    of times writes the follow-up exactly once;
 * 3. if the process dies between 1 and 2, `repair()` (a scan) or `run()` (a checkpointed
 *    subscription) finds primary events whose follow-up is missing and completes them.
 *
 * The follow-up must be a pure function of the primary event, so a repair writes exactly what the
 * original writer would have. Works against any core `EventStore`.
 */
import {
  type AppendRequest,
  type AppendResult,
  type EventId,
  type EventStore,
  expected,
  type GlobalPosition,
  type NewEvent,
  type StoredEvent,
  type StoreError,
  type StreamId,
  type Subscription,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import { uuidV5 } from './uuid.js'

/** Namespace of follow-up event ids (a fixed random UUID; changing it would re-issue every follow-up). */
export const FOLLOW_UP_NAMESPACE = '3c1f8e52-6a0b-4d7e-9f35-2b8a4c6d1e90'

/** What a rule sees of a primary event: its content, not where the store put it. */
export type PrimaryEvent = Pick<
  StoredEvent,
  'id' | 'type' | 'schemaVersion' | 'data' | 'metadata' | 'streamId'
>

export interface FollowUp {
  readonly streamId: StreamId
  /** The event to append; its id is derived from the primary event's id. */
  readonly event: Omit<NewEvent, 'id'>
}

export interface TwoStreamRule {
  /** Stream-id prefixes of the primary streams, e.g. `['pool-']`: what repairs scan. */
  readonly primaryStreamPrefixes: readonly string[]
  /** The follow-up a primary event needs, or null. Pure: same event, same follow-up. */
  readonly followUpOf: (primary: PrimaryEvent) => FollowUp | null
  /** Namespace for follow-up ids. Default `FOLLOW_UP_NAMESPACE`. */
  readonly namespace?: string
  /** Attempts at the follow-up append when other writers keep moving the second stream. Default 5. */
  readonly maxAttempts?: number
}

/** The follow-up's id: UUID v5 of the primary event's id. */
export const followUpEventId = (primaryId: string, namespace: string = FOLLOW_UP_NAMESPACE): EventId =>
  uuidV5(namespace, `follow-up:${primaryId}`) as EventId

/**
 * `written`: this call's append succeeded (when two processes complete the same follow-up at once,
 * both may report it, but the store holds it once); `already-present`: found before appending.
 */
export type FollowUpOutcome = 'written' | 'already-present' | 'none-needed'

export interface TwoStreamWriteResult {
  readonly primary: AppendResult
  readonly followUps: readonly FollowUpOutcome[]
}

export interface RepairReport {
  readonly scanned: number
  readonly written: number
  /** The last primary position scanned (pass as `after` to continue); `after` when none was. */
  readonly position: GlobalPosition
}

export interface TwoStreamWriter {
  /** Appends the primary request, then the follow-up of each of its events. */
  readonly write: (primary: AppendRequest) => TaskEither<StoreError, TwoStreamWriteResult>
  /** Makes sure one primary event's follow-up is stored exactly once. */
  readonly complete: (primary: PrimaryEvent) => TaskEither<StoreError, FollowUpOutcome>
  /** Scans primary streams after `after` and completes every missing follow-up. */
  readonly repair: (options?: {
    readonly after?: GlobalPosition
    readonly pageSize?: number
  }) => TaskEither<StoreError, RepairReport>
  /** Completes follow-ups continuously, as a checkpointed subscription on the primary streams. */
  readonly run: (subscriptionId: string, onError?: (error: unknown) => void) => Subscription
}

export const createTwoStreamWriter = (store: EventStore, rule: TwoStreamRule): TwoStreamWriter => {
  const maxAttempts = rule.maxAttempts ?? 5

  const complete =
    (primary: PrimaryEvent): TaskEither<StoreError, FollowUpOutcome> =>
    async () => {
      const followUp = rule.followUpOf(primary)
      if (followUp === null) return E.right('none-needed')
      const id = followUpEventId(primary.id, rule.namespace)
      let conflict: StoreError | null = null
      for (let attempt = 0; attempt < maxAttempts; attempt++) {
        const stream = await store.readStream(followUp.streamId, { direction: 'backward' })()
        if (E.isLeft(stream)) return stream
        if (stream.right.some((e) => e.id === id)) return E.right('already-present')
        // Exact expected version: a concurrent writer of the same follow-up makes this fail, and the
        // next attempt then finds the id.
        const version = stream.right[0]?.version ?? 0
        const r = await store.append({
          streamId: followUp.streamId,
          expected: expected.exact(version),
          events: [{ ...followUp.event, id }],
        })()
        if (E.isRight(r)) return E.right('written')
        if (r.left._tag !== 'WrongExpectedVersion') return r
        conflict = r.left
      }
      return E.left(conflict as StoreError)
    }

  const write =
    (request: AppendRequest): TaskEither<StoreError, TwoStreamWriteResult> =>
    async () => {
      const primary = await store.append(request)()
      if (E.isLeft(primary)) return primary
      const followUps: FollowUpOutcome[] = []
      for (const event of request.events) {
        const r = await complete({ ...event, streamId: request.streamId })()
        if (E.isLeft(r)) return r
        followUps.push(r.right)
      }
      return E.right({ primary: primary.right, followUps })
    }

  const repair =
    (
      options: { readonly after?: GlobalPosition; readonly pageSize?: number } = {},
    ): TaskEither<StoreError, RepairReport> =>
    async () => {
      const pageSize = options.pageSize ?? 500
      let position = options.after ?? 0n
      let scanned = 0
      let written = 0
      for (;;) {
        const page = await store.readAll({
          after: position,
          maxCount: pageSize,
          streamPrefixes: rule.primaryStreamPrefixes,
        })()
        if (E.isLeft(page)) return page
        for (const event of page.right) {
          const r = await complete(event)()
          if (E.isLeft(r)) return r
          scanned++
          if (r.right === 'written') written++
          position = event.globalPosition
        }
        if (page.right.length < pageSize) return E.right({ scanned, written, position })
      }
    }

  const run = (subscriptionId: string, onError?: (error: unknown) => void): Subscription =>
    store.subscribe({
      subscriptionId,
      streamPrefixes: rule.primaryStreamPrefixes,
      handler: async (event) => {
        const r = await complete(event)()
        if (E.isLeft(r)) throw new Error(`follow-up of a primary event failed: ${r.left.message}`)
      },
      ...(onError === undefined ? {} : { onError }),
    })

  return { write, complete, repair, run }
}
