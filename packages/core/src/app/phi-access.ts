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
import { type EventStore, expected, type NewEvent, type StoreError } from '../store/port.js'

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

interface PhiAccessDeps {
  readonly store: EventStore
  readonly ids: IdGenerator
  readonly clock: Clock
}

const accessEvent = (deps: PhiAccessDeps, access: PhiAccess): { streamId: StreamId; event: NewEvent } => {
  const at = deps.clock.now()
  const event: PhiAccessed = { type: 'PhiAccessed', data: { ...access, at } }
  return {
    streamId: auditStreamId(at),
    event: {
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
  }
}

/** Appends one access record; the caller answers the request only after this succeeded. */
export const recordPhiAccess = async (
  deps: PhiAccessDeps,
  access: PhiAccess,
): Promise<E.Either<StoreError, void>> => {
  const { streamId, event } = accessEvent(deps, access)
  const r = await deps.store.append({ streamId, expected: expected.any, events: [event] })()
  return E.isLeft(r) ? r : E.right(undefined)
}

/** At most this many access records share one append. */
const MAX_AUDIT_BATCH = 256

/**
 * `recordPhiAccess` with group commit: while one append of access records is in flight, the
 * records of concurrent reads queue, and the next append writes them all (one append per daily
 * stream, `expected.any`, so one transaction for the usual single day). Each caller is answered
 * when the append holding its record succeeded (or failed): nothing is shown that is not logged.
 */
export const createPhiAccessRecorder = (deps: PhiAccessDeps) => {
  type Done = (r: E.Either<StoreError, void>) => void
  const waiting: { readonly streamId: StreamId; readonly event: NewEvent; readonly done: Done }[] = []
  let writing = false
  const drain = async (): Promise<void> => {
    writing = true
    try {
      while (waiting.length > 0) {
        const batch = waiting.splice(0, MAX_AUDIT_BATCH)
        const byStream = new Map<StreamId, typeof batch>()
        for (const w of batch) {
          const same = byStream.get(w.streamId)
          if (same === undefined) byStream.set(w.streamId, [w])
          else same.push(w)
        }
        for (const [streamId, ws] of byStream) {
          const r = await deps.store
            .append({ streamId, expected: expected.any, events: ws.map((w) => w.event) })()
            .catch(
              (): E.Either<StoreError, unknown> =>
                E.left({ _tag: 'StoreUnavailable', reason: 'unknown', message: 'audit append failed' }),
            )
          for (const w of ws) w.done(E.isLeft(r) ? r : E.right(undefined))
        }
      }
    } finally {
      writing = false
    }
  }
  return (access: PhiAccess): Promise<E.Either<StoreError, void>> =>
    new Promise((done) => {
      waiting.push({ ...accessEvent(deps, access), done })
      if (!writing) void drain()
    })
}
