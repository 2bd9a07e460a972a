import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { upcasterChain } from '../envelope/upcast.js'
import {
  REFERRAL_EVENT_SCHEMA_VERSION,
  ReferralAttribution,
  type ReferralEventType,
  ReferralReturnReason,
  ReferralRoute,
  ReferralTarget,
} from '../referral/codecs.js'
import { referralUpcasters } from '../referral/upcasters.js'
import { describeErrors } from '../shared/decode.js'
import { CategoryRef, Urgency } from '../shared/domain-types.js'
import { type DomainError, domainError } from '../shared/errors.js'
import { PracticeId, ReferralId, RegionId, SpecialtyId } from '../shared/ids.js'
import { Instant } from '../shared/time.js'

/**
 * The referral events as the facts projection reads them: for each event type only the fields
 * `evolveReferralFacts` uses, with the referral event codecs' own field codecs (`ReferralId`,
 * `Instant`, `ReferralTarget`, … from `referral/codecs.ts`, the single source of truth), so a
 * rebuild validates what it folds and skips the rest — the `phi` (sealed or redacted: the facts
 * never open it, so a rebuild needs no key and does no AES-GCM), the appointment place, the reason
 * codes. Decoding returns the stored object itself (`t.type` keeps unknown keys), typed as the
 * narrow event. Four types change no facts at all (`FACTS_IGNORED_EVENT_TYPES`): they are
 * recognised by their type string alone and never parsed.
 */
const data = <P extends t.Props>(props: P) => t.type({ referralId: ReferralId, ...props })

const sentData = t.intersection([
  data({
    senderPracticeId: PracticeId,
    specialtyId: SpecialtyId,
    category: CategoryRef,
    regionId: RegionId,
    urgency: Urgency,
    target: ReferralTarget,
    sentAt: Instant,
  }),
  t.partial({ attribution: ReferralAttribution }),
])

const FACTS_DATA = {
  ReferralSent: sentData,
  ReferralDelivered: data({ recipientPracticeId: PracticeId, route: ReferralRoute, deliveredAt: Instant }),
  ReferralUnassigned: data({}),
  ReferralReturned: data({ reason: ReferralReturnReason, returnedAt: Instant }),
  ReferralAccepted: data({ acceptedAt: Instant }),
  ReferralDeclined: data({ declinedAt: Instant }),
  ReferralExpired: data({ expiredAt: Instant }),
  AppointmentScheduled: data({ at: Instant }),
  AppointmentRescheduled: data({ at: Instant }),
  PatientNoShowRecorded: data({}),
  ReferralCompleted: data({ completedAt: Instant }),
  ReferralUrgencyChanged: data({ urgency: Urgency }),
  ReferralCategoryChanged: data({ specialtyId: SpecialtyId, regionId: RegionId, category: CategoryRef }),
  ReferralCancelled: data({ recipientPracticeId: t.union([PracticeId, t.null]), cancelledAt: Instant }),
  ReferralRedirected: data({ target: ReferralTarget }),
} as const

/** Referral event types whose fold leaves the facts row as it is (not even `updatedAt`). */
export const FACTS_IGNORED_EVENT_TYPES = [
  'ResponseReminderIssued',
  'PatientReminderIssued',
  'AttachmentAdded',
  'MessagePosted',
] as const satisfies readonly ReferralEventType[]

type FactsDataCodecs = typeof FACTS_DATA
type IgnoredType = (typeof FACTS_IGNORED_EVENT_TYPES)[number]

/**
 * What `evolveReferralFacts` reads of a referral event. Every `ReferralEvent` is one (its data has
 * these fields and more), so the in-memory projection passes full events; the PostgreSQL
 * projection passes events decoded with `decodeFactsEvent`.
 */
export type ReferralFactsEvent =
  | {
      [K in keyof FactsDataCodecs]: { readonly type: K; readonly data: t.TypeOf<FactsDataCodecs[K]> }
    }[keyof FactsDataCodecs]
  | { readonly type: IgnoredType; readonly data: { readonly referralId: ReferralId } }

const IGNORED: ReadonlySet<string> = new Set(FACTS_IGNORED_EVENT_TYPES)
/** True for the event types the facts need: a reader can leave the others' data unread. */
export const factsNeedEventType = (type: string): boolean => !IGNORED.has(type)

const upcast = upcasterChain(referralUpcasters)
const schemaVersionOf = (type: string): number =>
  (REFERRAL_EVENT_SCHEMA_VERSION as Readonly<Record<string, number>>)[type] ?? 1

const hasOwn = (o: object, k: string): k is keyof FactsDataCodecs => Object.hasOwn(o, k)

/**
 * Decodes a stored referral event for the facts fold: `null` for the types the facts ignore (their
 * data is not looked at, may be `null`), the narrow event otherwise. Older schema versions go
 * through the referral upcasters first, like the aggregate's catalog. An unknown type, an unknown
 * schema version or data missing a field the facts need is a `DomainError` (naming the type and the
 * field paths, never a value: the data may hold PHI).
 */
export const decodeFactsEvent = (stored: {
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
}): E.Either<DomainError, ReferralFactsEvent | null> => {
  if (IGNORED.has(stored.type)) return E.right(null)
  if (!hasOwn(FACTS_DATA, stored.type)) {
    return E.left(domainError('event.undecodable', `${stored.type} is not a referral event`))
  }
  const current = stored.schemaVersion === schemaVersionOf(stored.type) ? stored : upcast(stored)
  if (current.schemaVersion !== schemaVersionOf(current.type)) {
    return E.left(
      domainError(
        'event.unknown_schema_version',
        `no upcaster from ${current.type} schema version ${current.schemaVersion}`,
      ),
    )
  }
  const type = current.type as keyof FactsDataCodecs
  const decoded = (FACTS_DATA[type] as t.Type<unknown>).decode(current.data)
  if (E.isLeft(decoded)) {
    return E.left(
      domainError('event.undecodable', `stored ${type} event does not match its codec`, {
        problems: describeErrors(decoded.left)
          .map((p) => `${p.path}: ${p.expected}`)
          .join('; ')
          .slice(0, 500),
      }),
    )
  }
  return E.right({ type, data: decoded.right } as ReferralFactsEvent)
}
