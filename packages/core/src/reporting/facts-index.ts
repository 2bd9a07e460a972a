import { catchUpDecoded, serializedRefresh } from '../app/catch-up.js'
import type { Aggregate } from '../app/command-handler.js'
import type { ReferralEvent } from '../referral/codecs.js'
import type { ReferralCommand } from '../referral/decider.js'
import type { ReferralState } from '../referral/state.js'
import type { PracticeId, ReferralId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import type { EventStore, GlobalPosition } from '../store/port.js'
import { evolveReferralFacts, type ReferralFacts } from './facts.js'
import type { FactReportOptions } from './reports.js'

/** Which facts rows a report reads: sent in `[sentFrom, sentTo)`, sent or held by `practiceId`. */
export interface ReferralFactsQuery {
  readonly sentFrom?: Instant
  readonly sentTo?: Instant
  /** Rows the practice sent or holds (`senderPracticeId` or `receivingPracticeId`). */
  readonly practiceId?: PracticeId
}

/**
 * The referral-facts read model the reports read. In memory: `createReferralFactsIndex`;
 * `@referrals/postgres` keeps the same rows in a table (`createPostgresReferralFacts`).
 */
export interface ReferralFactsReadModel {
  /** Catches up: afterwards every event appended before the call is reflected. */
  readonly refresh: () => Promise<void>
  /** Matching rows, ordered by `sentAt` then `referralId`. */
  readonly facts: (q: ReferralFactsQuery) => Promise<readonly ReferralFacts[]>
  /**
   * Optional: the cells of a fact report over the rows `q` selects, aggregated where the rows live
   * (PostgreSQL: in SQL). Must equal `factReport(await facts(q), options)`; a model without it is
   * read through `facts` and computed in the process.
   */
  readonly report?: (q: ReferralFactsQuery, options: FactReportOptions) => Promise<readonly unknown[]>
}

/** Shared by every implementation: does a row match the query? */
export const matchesFactsQuery = (f: ReferralFacts, q: ReferralFactsQuery): boolean =>
  (q.sentFrom === undefined || f.sentAt >= q.sentFrom) &&
  (q.sentTo === undefined || f.sentAt < q.sentTo) &&
  (q.practiceId === undefined ||
    f.senderPracticeId === q.practiceId ||
    f.receivingPracticeId === q.practiceId)

export const compareFacts = (a: ReferralFacts, b: ReferralFacts): number =>
  a.sentAt === b.sentAt
    ? a.referralId < b.referralId
      ? -1
      : a.referralId > b.referralId
        ? 1
        : 0
    : a.sentAt < b.sentAt
      ? -1
      : 1

/**
 * The referral-facts projection in memory: a catch-up read model over the `referral-` streams,
 * rebuilt from the log on start (the in-memory twin of the PostgreSQL table).
 */
export const createReferralFactsIndex = (options: {
  readonly store: EventStore
  readonly aggregate: Aggregate<ReferralCommand, ReferralEvent, ReferralState>
}): ReferralFactsReadModel => {
  const rows = new Map<ReferralId, ReferralFacts>()
  let position: GlobalPosition = 0n

  const catchUp = catchUpDecoded({
    store: options.store,
    aggregate: options.aggregate,
    streamPrefix: 'referral-',
    label: 'referral facts',
    position: () => position,
    advance: (next) => {
      position = next
    },
    apply: (event, stored) => {
      const next = evolveReferralFacts(
        rows.get(event.data.referralId) ?? null,
        event,
        stored.metadata.occurredAt,
      )
      if (next !== null) rows.set(next.referralId, next)
    },
  })
  const refresh = serializedRefresh(catchUp)

  return {
    refresh,
    facts: async (q) => {
      await refresh()
      return [...rows.values()].filter((f) => matchesFactsQuery(f, q)).sort(compareFacts)
    },
  }
}
