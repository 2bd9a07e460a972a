import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { PlatformRole, PracticeRole } from '../shared/actor.js'
import type { IdGenerator } from '../shared/id-generator.js'
import {
  CorrelationId,
  type EventId,
  PatientId,
  PracticeId,
  ReferralId,
  type StreamId,
  UserId,
  unsafeId,
} from '../shared/ids.js'
import { type Clock, Instant } from '../shared/time.js'
import { type EventStore, expected, type StoreError } from '../store/port.js'

/**
 * One read of PHI (SPEC §3 "Every read of PHI is recorded"): who, in which role, which referral
 * and patient, for what purpose, when, through which channel, and whether it was granted.
 * Stored as an event in a daily audit stream `audit-YYYY-MM-DD`, so the audit trail has the same
 * guarantees (append-only, hash-chained, replayable) as the domain events.
 */
export const PhiAccessed = t.readonly(
  t.type({
    type: t.literal('PhiAccessed'),
    data: t.readonly(
      t.type({
        userId: UserId,
        /** The reader's role in the practice it read through; `none` when it had no role there (denied reads). */
        role: t.union([PracticeRole, PlatformRole, t.literal('system'), t.literal('none')]),
        practiceId: t.union([PracticeId, t.null]),
        referralId: t.union([ReferralId, t.null]),
        patientId: t.union([PatientId, t.null]),
        purpose: t.keyof({
          treatment: null,
          operations: null,
          audit: null,
          patient_request: null,
          legal: null,
        }),
        outcome: t.keyof({ granted: null, denied: null }),
        channel: t.keyof({ api: null, cli: null }),
        resource: t.string,
        at: Instant,
        correlationId: CorrelationId,
      }),
    ),
  }),
)
export type PhiAccessed = t.TypeOf<typeof PhiAccessed>
export type PhiAccess = Omit<PhiAccessed['data'], 'at'>
export const PHI_PURPOSES = ['treatment', 'operations', 'audit', 'patient_request', 'legal'] as const

export const auditStreamId = (at: Instant): StreamId => unsafeId<StreamId>(`audit-${at.slice(0, 10)}`)

/** Appends one access record; the caller answers the request only after this succeeded. */
export const recordPhiAccess = async (
  deps: { readonly store: EventStore; readonly ids: IdGenerator; readonly clock: Clock },
  access: PhiAccess,
): Promise<E.Either<StoreError, void>> => {
  const at = deps.clock.now()
  const event: PhiAccessed = { type: 'PhiAccessed', data: { ...access, at } }
  const r = await deps.store.append({
    streamId: auditStreamId(at),
    expected: expected.any,
    events: [
      {
        id: unsafeId<EventId>(deps.ids.next()),
        type: event.type,
        schemaVersion: 1,
        data: PhiAccessed.encode(event).data,
        metadata: {
          actor: { kind: 'system', component: 'phi-access-audit' },
          correlationId: access.correlationId,
          commandId: unsafeId(`audit:${access.correlationId}`),
          occurredAt: at,
        },
      },
    ],
  })()
  return E.isLeft(r) ? r : E.right(undefined)
}
