import * as E from 'fp-ts/lib/Either.js'
import type { BlindIndex } from '../privacy/port.js'
import type { ReferralCommand } from '../referral/decider.js'
import {
  evolveReferral,
  initialReferralState,
  type ReferralEvent,
  type ReferralState,
  type ReferralStatus,
} from '../referral/index.js'
import type { CategoryRef, Urgency } from '../shared/domain-types.js'
import type { PatientId, PracticeId, ReferralId, SpecialtyId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import type { EventStore, GlobalPosition } from '../store/port.js'
import { catchUpDecoded, serializedRefresh } from './catch-up.js'
import type { Aggregate } from './command-handler.js'

/** A referral as lists show it: no PHI, only ids, codes and times. */
export interface ReferralSummary {
  readonly referralId: ReferralId
  readonly senderPracticeId: PracticeId
  readonly recipientPracticeId: PracticeId | null
  readonly formerRecipients: readonly PracticeId[]
  readonly patientId: PatientId
  readonly status: ReferralStatus
  readonly urgency: Urgency
  readonly specialtyId: SpecialtyId
  readonly category: CategoryRef
  readonly route: 'direct' | 'pooled'
  readonly sentAt: Instant
  readonly updatedAt: Instant
  readonly version: number
}

export interface ReferralListQuery {
  readonly practiceId: PracticeId
  /** `sent`: the practice sent it. `received`: the practice holds it now or held it before. */
  readonly box: 'sent' | 'received'
  readonly status?: readonly ReferralStatus[]
  readonly urgency?: Urgency
  readonly specialtyId?: SpecialtyId
  readonly categoryId?: string
  /** Patient name or health number, matched through the blind index (never plaintext). */
  readonly patient?: string
  readonly sentFrom?: Instant
  readonly sentTo?: Instant
  readonly limit?: number
  /** Opaque cursor from the previous page. */
  readonly cursor?: string
}

export interface ReferralPage {
  readonly items: readonly ReferralSummary[]
  readonly nextCursor: string | null
}

/** The list row of a referral state (no PHI). Shared by every read model implementation. */
export const referralSummaryOf = (
  s: ReferralState & { readonly exists: true },
  version: number,
  updatedAt: Instant,
): ReferralSummary => ({
  referralId: s.referralId,
  senderPracticeId: s.senderPracticeId,
  recipientPracticeId: s.recipientPracticeId,
  formerRecipients: s.formerRecipients,
  patientId: s.patientId,
  status: s.status,
  urgency: s.urgency,
  specialtyId: s.specialtyId,
  category: s.category,
  route: s.route,
  sentAt: s.sentAt,
  updatedAt,
  version,
})

/** Keyset cursor of the lists: the last row's (sentAt, referralId), opaque to clients. */
export const encodeReferralCursor = (s: ReferralSummary): string =>
  Buffer.from(JSON.stringify([s.sentAt, s.referralId])).toString('base64url')

export const decodeReferralCursor = (cursor: string): readonly [string, string] | null => {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    return Array.isArray(parsed) && parsed.length === 2 && parsed.every((p) => typeof p === 'string')
      ? [parsed[0] as string, parsed[1] as string]
      : null
  } catch {
    return null
  }
}

/**
 * The sent/received lists: a catch-up read model over the `referral-` streams, rebuilt from the
 * log on start. Patient search goes through keyed blind-index tokens computed from the decrypted
 * PHI while catching up: once a patient is forgotten, a rebuild can no longer compute their tokens,
 * so they are no longer findable. Plaintext PHI is never kept.
 */
export const createReferralIndex = (options: {
  readonly store: EventStore
  readonly aggregate: Aggregate<ReferralCommand, ReferralEvent, ReferralState>
  readonly blindIndex?: BlindIndex
}): ReferralIndex => {
  const states = new Map<ReferralId, { state: ReferralState; version: number; updatedAt: Instant }>()
  const tokens = new Map<string, Set<ReferralId>>()
  let position: GlobalPosition = 0n

  const addToken = (token: string, referralId: ReferralId) => {
    const set = tokens.get(token) ?? new Set<ReferralId>()
    set.add(referralId)
    tokens.set(token, set)
  }

  const indexPhi = (event: ReferralEvent) => {
    if (options.blindIndex === undefined || event.type !== 'ReferralSent') return
    const phi = event.data.phi
    if (!('patient' in phi)) return // forgotten: nothing to index
    const { patient } = phi
    const bi = options.blindIndex
    addToken(bi.token('patient_name', `${patient.givenName} ${patient.familyName}`), event.data.referralId)
    addToken(bi.token('patient_name', patient.familyName), event.data.referralId)
    if (patient.healthNumber !== undefined) {
      addToken(bi.token('health_number', patient.healthNumber), event.data.referralId)
    }
  }

  const catchUp = catchUpDecoded({
    store: options.store,
    aggregate: options.aggregate,
    streamPrefix: 'referral-',
    label: 'referral index',
    position: () => position,
    advance: (next) => {
      position = next
    },
    apply: (event, stored) => {
      const id = event.data.referralId
      const before = states.get(id)
      states.set(id, {
        state: evolveReferral(before?.state ?? initialReferralState, event),
        version: stored.version,
        updatedAt: stored.recordedAt,
      })
      indexPhi(event)
    },
  })

  const refresh = serializedRefresh(catchUp)

  const summaryOf = (entry: {
    state: ReferralState
    version: number
    updatedAt: Instant
  }): ReferralSummary | null =>
    entry.state.exists ? referralSummaryOf(entry.state, entry.version, entry.updatedAt) : null

  /** Newest first (sentAt descending, then referral id); keyset pagination. */
  const list = async (q: ReferralListQuery): Promise<E.Either<'invalid_cursor', ReferralPage>> => {
    await refresh()
    const after = q.cursor === undefined ? null : decodeReferralCursor(q.cursor)
    if (q.cursor !== undefined && after === null) return E.left('invalid_cursor')
    let matchIds: Set<ReferralId> | null = null
    if (q.patient !== undefined) {
      const bi = options.blindIndex
      matchIds = new Set<ReferralId>()
      if (bi !== undefined) {
        for (const field of ['patient_name', 'health_number'] as const) {
          for (const id of tokens.get(bi.token(field, q.patient)) ?? []) matchIds.add(id)
        }
      }
    }
    const limit = Math.min(Math.max(q.limit ?? 25, 1), 200)
    const rows = [...states.values()]
      .flatMap((e) => summaryOf(e) ?? [])
      .filter(
        (s) =>
          (q.box === 'sent'
            ? s.senderPracticeId === q.practiceId
            : s.recipientPracticeId === q.practiceId || s.formerRecipients.includes(q.practiceId)) &&
          (q.status === undefined || q.status.includes(s.status)) &&
          (q.urgency === undefined || s.urgency === q.urgency) &&
          (q.specialtyId === undefined || s.specialtyId === q.specialtyId) &&
          (q.categoryId === undefined ||
            s.category.categoryId === q.categoryId ||
            s.category.subcategoryId === q.categoryId) &&
          (q.sentFrom === undefined || s.sentAt >= q.sentFrom) &&
          (q.sentTo === undefined || s.sentAt < q.sentTo) &&
          (matchIds === null || matchIds.has(s.referralId)),
      )
      .sort((a, b) =>
        a.sentAt === b.sentAt ? (a.referralId < b.referralId ? 1 : -1) : a.sentAt < b.sentAt ? 1 : -1,
      )
      .filter(
        (s) => after === null || s.sentAt < after[0] || (s.sentAt === after[0] && s.referralId < after[1]),
      )
    const items = rows.slice(0, limit)
    const last = items.at(-1)
    return E.right({ items, nextCursor: rows.length > limit && last ? encodeReferralCursor(last) : null })
  }

  return {
    refresh,
    list,
    get: async (referralId: ReferralId) => {
      await refresh()
      const entry = states.get(referralId)
      return entry ? summaryOf(entry) : null
    },
    /** Referrals waiting in the intake queue (pooled, unassigned), for the routing process manager. */
    unassigned: async (): Promise<readonly ReferralSummary[]> => {
      await refresh()
      return [...states.values()].flatMap((e) => summaryOf(e) ?? []).filter((s) => s.status === 'unassigned')
    },
    /** Every referral in a non-final state, for the deadline scheduler. */
    open: async (): Promise<readonly (ReferralState & { exists: true })[]> => {
      await refresh()
      return [...states.values()]
        .map((e) => e.state)
        .filter(
          (s): s is ReferralState & { exists: true } =>
            s.exists && (s.status === 'pending' || s.status === 'unassigned'),
        )
    },
  }
}

/**
 * The sent/received read model the engine and the HTTP lists use. The in-memory implementation is
 * `createReferralIndex`; `@referrals/postgres` keeps the same model in PostgreSQL tables.
 */
export interface ReferralIndex {
  /** Catches up with the store: afterwards every event appended before the call is reflected. */
  readonly refresh: () => Promise<void>
  readonly list: (q: ReferralListQuery) => Promise<E.Either<'invalid_cursor', ReferralPage>>
  readonly get: (referralId: ReferralId) => Promise<ReferralSummary | null>
  readonly unassigned: () => Promise<readonly ReferralSummary[]>
  readonly open: () => Promise<readonly (ReferralState & { exists: true })[]>
}
