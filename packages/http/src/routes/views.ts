import {
  type CatalogState,
  CategoryRef,
  CodingSystem,
  Instant,
  type Loaded,
  listCategories,
  listCodings,
  PatientId,
  PracticeId,
  PracticeRole,
  type PracticeState,
  REFERRAL_FHIR_TASK_STATUS,
  type ReferralEvent,
  ReferralId,
  ReferralPatient,
  type ReferralState,
  ReferralStatus,
  type ReferralSummary,
  referralSummaryOf,
  SpecialistSettings,
  SpecialtyId,
  type StoredEvent,
  Urgency,
  UserId,
} from '@referrals/core'
import * as t from 'io-ts'
import { nameSchema } from '../openapi/io-ts-schema.js'

/**
 * Response shapes. These codecs are the single source of the OpenAPI response schemas; each is
 * named (`components.schemas`), as are the core codecs they share with request bodies.
 */

const nullable = <C extends t.Mixed>(c: C) => t.union([c, t.null])

export const PracticeView = nameSchema(
  t.type({
    practiceId: PracticeId,
    name: t.string,
    kind: t.keyof({ clinic: null, specialist: null }),
    verified: t.boolean,
    receiving: t.keyof({ active: null, paused: null }),
    members: t.array(t.type({ userId: UserId, role: PracticeRole })),
    settings: nullable(nameSchema(SpecialistSettings, 'SpecialistSettings')),
    version: t.number,
  }),
  'Practice',
)
export type PracticeView = t.TypeOf<typeof PracticeView>

export const practiceView = (state: PracticeState & { exists: true }, version: number): PracticeView => ({
  practiceId: state.practiceId,
  name: state.name,
  kind: state.kind,
  verified: state.verified,
  receiving: state.receiving,
  members: state.members.map((m) => ({ userId: m.userId, role: m.role })),
  settings: state.settings,
  version,
})

export const CatalogView = nameSchema(
  t.type({
    specialtyId: SpecialtyId,
    name: t.string,
    categories: t.array(
      t.type({
        categoryId: t.string,
        name: t.string,
        parentId: nullable(t.string),
        status: t.keyof({ proposed: null, approved: null, retired: null }),
      }),
    ),
    /** The coding map: SNOMED CT / LOINC codes and the category each means. */
    codings: t.array(t.type({ system: CodingSystem, code: t.string, categoryId: t.string })),
    version: t.number,
  }),
  'Specialty',
)
export type CatalogView = t.TypeOf<typeof CatalogView>

export const catalogView = (state: CatalogState & { exists: true }, version: number): CatalogView => ({
  specialtyId: state.specialtyId,
  name: state.name,
  categories: listCategories(state).map((c) => ({
    categoryId: c.categoryId,
    name: c.name,
    parentId: c.parentId,
    status: c.status,
  })),
  codings: listCodings(state).map((c) => ({ system: c.system, code: c.code, categoryId: c.categoryId })),
  version,
})

export const ReferralSummaryView = nameSchema(
  t.type({
    referralId: ReferralId,
    senderPracticeId: PracticeId,
    recipientPracticeId: nullable(PracticeId),
    patientId: PatientId,
    status: ReferralStatus,
    fhirTaskStatus: t.string,
    urgency: Urgency,
    specialtyId: SpecialtyId,
    category: nameSchema(CategoryRef, 'CategoryRef'),
    route: t.keyof({ direct: null, pooled: null }),
    sentAt: Instant,
    updatedAt: Instant,
    version: t.number,
  }),
  'ReferralSummary',
)
export type ReferralSummaryView = t.TypeOf<typeof ReferralSummaryView>

export const summaryView = (s: ReferralSummary): ReferralSummaryView => ({
  referralId: s.referralId,
  senderPracticeId: s.senderPracticeId,
  recipientPracticeId: s.recipientPracticeId,
  patientId: s.patientId,
  status: s.status,
  fhirTaskStatus: REFERRAL_FHIR_TASK_STATUS[s.status],
  urgency: s.urgency,
  specialtyId: s.specialtyId,
  category: s.category,
  route: s.route,
  sentAt: s.sentAt,
  updatedAt: s.updatedAt,
  version: s.version,
})

export const ReferralPage = nameSchema(
  t.type({ items: t.array(ReferralSummaryView), nextCursor: nullable(t.string) }),
  'ReferralPage',
)

/** What the caller may see of the PHI: all of it, or nothing (former recipients, non-members). */
export const ReferralDetailView = nameSchema(
  t.type({
    referral: ReferralSummaryView,
    phiVisible: t.boolean,
    /** null when the caller may not see PHI, or the patient was forgotten. */
    patient: nullable(nameSchema(ReferralPatient, 'ReferralPatient')),
    reason: nullable(t.string),
    declinedBy: t.array(PracticeId),
    appointment: nullable(t.type({ at: Instant, location: nullable(t.string), noShow: t.boolean })),
    messages: t.array(
      t.type({
        messageId: t.string,
        fromPracticeId: PracticeId,
        postedAt: Instant,
        body: nullable(t.string),
      }),
    ),
    attachments: t.array(
      t.type({
        attachmentId: t.string,
        contentType: t.string,
        sizeBytes: t.number,
        sha256: t.string,
        fileName: nullable(t.string),
      }),
    ),
    outcomeNote: nullable(t.string),
  }),
  'ReferralDetail',
)
export type ReferralDetailView = t.TypeOf<typeof ReferralDetailView>

const phiField = <K extends string>(phi: unknown, key: K, visible: boolean): string | null => {
  if (!visible || typeof phi !== 'object' || phi === null || !(key in phi)) return null
  const value = (phi as Record<K, unknown>)[key]
  return typeof value === 'string' ? value : null
}

export const referralDetail = (
  loaded: Loaded<ReferralEvent, ReferralState>,
  summary: ReferralSummaryView,
  phiVisible: boolean,
): ReferralDetailView => {
  const state = loaded.state
  let patient: ReferralDetailView['patient'] = null
  let reason: string | null = null
  let location: string | null = null
  let outcomeNote: string | null = null
  const messages: ReferralDetailView['messages'] = []
  const attachments: ReferralDetailView['attachments'] = []
  for (const e of loaded.events) {
    switch (e.type) {
      case 'ReferralSent':
        if (phiVisible && 'patient' in e.data.phi) {
          patient = e.data.phi.patient
          reason = e.data.phi.reason
        }
        break
      case 'AppointmentScheduled':
      case 'AppointmentRescheduled':
        location = phiField(e.data.phi, 'location', phiVisible)
        break
      case 'ReferralCompleted':
        outcomeNote = phiField(e.data.phi, 'outcomeNote', phiVisible)
        break
      case 'MessagePosted':
        messages.push({
          messageId: e.data.messageId,
          fromPracticeId: e.data.fromPracticeId,
          postedAt: e.data.postedAt,
          body: phiField(e.data.phi, 'body', phiVisible),
        })
        break
      case 'AttachmentAdded':
        attachments.push({
          attachmentId: e.data.attachmentId,
          contentType: e.data.contentType,
          sizeBytes: e.data.sizeBytes,
          sha256: e.data.sha256,
          fileName: phiField(e.data.phi, 'fileName', phiVisible),
        })
        break
      default:
        break
    }
  }
  return {
    referral: summary,
    phiVisible,
    patient,
    reason,
    declinedBy: state.exists ? [...state.declinedBy] : [],
    appointment:
      state.exists && state.appointment !== null
        ? { at: state.appointment.at, location, noShow: state.appointment.noShow }
        : null,
    messages,
    attachments,
    outcomeNote,
  }
}

export const summaryFromState = (
  state: ReferralState & { exists: true },
  version: number,
  updatedAt: Instant,
): ReferralSummaryView => summaryView(referralSummaryOf(state, version, updatedAt))

/** One entry of a referral's history: the event as recorded, PHI removed unless visible. */
export const HistoryEntry = nameSchema(
  t.type({
    version: t.number,
    type: t.string,
    recordedAt: Instant,
    occurredAt: Instant,
    actor: t.union([
      t.type({ kind: t.literal('user'), userId: UserId }),
      t.type({ kind: t.literal('system'), component: t.string }),
    ]),
    data: t.UnknownRecord,
  }),
  'HistoryEntry',
)
export type HistoryEntry = t.TypeOf<typeof HistoryEntry>

export const historyEntry = (
  stored: StoredEvent,
  event: ReferralEvent,
  phiVisible: boolean,
): HistoryEntry => {
  const { phi, ...rest } = event.data as Record<string, unknown> & { phi?: unknown }
  const actor = stored.metadata.actor
  return {
    version: stored.version,
    type: event.type,
    recordedAt: stored.recordedAt,
    occurredAt: stored.metadata.occurredAt,
    actor:
      actor.kind === 'user'
        ? { kind: 'user', userId: actor.userId }
        : { kind: 'system', component: actor.component },
    data: phi !== undefined && phiVisible ? { ...rest, phi } : rest,
  }
}
