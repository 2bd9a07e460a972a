import type { ReferralEvent, ReferralPatient, ReferralTarget } from '../referral/codecs.js'
import { isRedactedPhi } from '../referral/codecs.js'
import { REFERRAL_FHIR_TASK_STATUS, type ReferralAggregate, type ReferralStatus } from '../referral/state.js'
import type { Urgency } from '../shared/domain-types.js'
import type { PracticeId } from '../shared/ids.js'
import { addMillis } from '../shared/time.js'

/**
 * FHIR R4 export of a referral (issue 16). Pure: the caller passes the referral's state, its
 * events as loaded (PHI opened, or `{ redacted: true }` for a forgotten patient) and how much the
 * reader may see. The mapping tables are in the http README ("FHIR R4").
 *
 * Resources are plain JSON objects typed loosely (`FhirResource`): the official R4 JSON schema
 * checks them in the tests.
 */

export type FhirResource = { readonly resourceType: string; readonly id?: string } & Readonly<
  Record<string, unknown>
>

/** Code systems and identifier systems of this engine (URNs: they name, they do not resolve). */
export const FHIR_SYSTEMS = {
  referral: 'urn:referrals:referral-id',
  patient: 'urn:referrals:patient-id',
  healthNumber: 'urn:referrals:health-number',
  practice: 'urn:referrals:practice-id',
  attachment: 'urn:referrals:attachment-id',
  attachmentSha256: 'urn:referrals:attachment-sha256',
  message: 'urn:referrals:message-id',
  specialty: 'urn:referrals:specialty',
  category: 'urn:referrals:category',
  region: 'urn:referrals:region',
  businessStatus: 'urn:referrals:task-business-status',
  statusReason: 'urn:referrals:task-status-reason',
  declineReason: 'urn:referrals:decline-reason',
} as const

/** `Task.status` per referral status (the table of SPEC §3, kept in `REFERRAL_FHIR_TASK_STATUS`). */
export const FHIR_TASK_STATUS = REFERRAL_FHIR_TASK_STATUS

/** `ServiceRequest.status` per referral status. */
export const FHIR_SERVICE_REQUEST_STATUS: Readonly<Record<ReferralStatus, string>> = {
  unassigned: 'active',
  pending: 'active',
  accepted: 'active',
  scheduled: 'active',
  completed: 'completed',
  returned: 'on-hold',
  cancelled: 'revoked',
}

/** `ServiceRequest.priority` per urgency. */
export const FHIR_PRIORITY: Readonly<Record<Urgency, string>> = {
  routine: 'routine',
  urgent: 'urgent',
  emergent: 'stat',
}

/**
 * `Task.businessStatus` code: the finer state behind `Task.status` (why a `requested` task waits,
 * whether a scheduled patient did not show up, why a referral came back).
 */
export const fhirBusinessStatus = (state: ReferralAggregate): string => {
  switch (state.status) {
    case 'unassigned':
      return state.intake === 'no_candidate'
        ? 'no-candidate'
        : state.route === 'direct'
          ? 'sent'
          : 'awaiting-route'
    case 'pending':
      return 'awaiting-response'
    case 'accepted':
      return 'accepted'
    case 'scheduled':
      return state.appointment?.noShow === true ? 'no-show' : 'appointment-booked'
    case 'completed':
      return 'completed'
    case 'returned':
      return `returned-${(state.returnedReason ?? 'declined').replaceAll('_', '-')}`
    case 'cancelled':
      return 'cancelled'
  }
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/

/** FNV-1a over UTF-16 code units, 64 bits as two 32-bit lanes (pure; no crypto needed for a name). */
const fnv64 = (s: string): string => {
  let h1 = 0x811c9dc5
  let h2 = 0x01000193 ^ s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0
    h2 = Math.imul(h2 ^ (c + i), 0x01000193) >>> 0
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0')
}

/**
 * The FHIR `id` for an engine id: itself when it is a valid FHIR id (`[A-Za-z0-9\-.]{1,64}`),
 * otherwise `h-` and a 64-bit hash of it. The engine id itself is always kept in `identifier`.
 */
export const fhirId = (raw: string): string => (FHIR_ID.test(raw) ? raw : `h-${fnv64(raw)}`)

const ref = (type: string, raw: string) => ({ reference: `${type}/${fhirId(raw)}` })
/** A practice reference also carries the practice id (`Reference.identifier`), so an import can read it. */
const practiceRef = (type: string, practiceId: string) => ({
  ...ref(type, practiceId),
  identifier: { system: FHIR_SYSTEMS.practice, value: practiceId },
})

/** How much of the referral the reader may see (as `GET /referrals/:id`). */
export type FhirAccess = 'phi' | 'limited'

export interface FhirReferralSource {
  readonly state: ReferralAggregate
  readonly events: readonly ReferralEvent[]
  readonly access: FhirAccess
}

export interface FhirReferralExport {
  readonly serviceRequest: FhirResource
  readonly task: FhirResource
  readonly patient: FhirResource
  readonly organizations: readonly FhirResource[]
  readonly practitionerRoles: readonly FhirResource[]
  readonly documentReferences: readonly FhirResource[]
  readonly communications: readonly FhirResource[]
  readonly appointment: FhirResource | null
  /**
   * Routing lineage (PHI access only): one Task per delivery to a practice, `partOf` the referral's
   * Task, with the practice as `owner` and how the delivery ended (declined, expired, live).
   */
  readonly deliveryTasks: readonly FhirResource[]
  /**
   * One ServiceRequest per redirect: the request as it stood before it (status `revoked`), oldest
   * first; each later request, and the referral's own, `replaces` the one before.
   */
  readonly replacedServiceRequests: readonly FhirResource[]
  /** True when the patient was forgotten: no resource carries their identity. */
  readonly patientForgotten: boolean
}

const phiString = (phi: unknown, key: string): string | null => {
  if (typeof phi !== 'object' || phi === null || isRedactedPhi(phi)) return null
  const value = (phi as Record<string, unknown>)[key]
  return typeof value === 'string' && value.trim() !== '' ? value : null
}

/** `meta.security` REDACTED: the resource stands for a patient whose identity is not given. */
const REDACTED = {
  security: [
    {
      system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
      code: 'REDACTED',
      display: 'redacted',
    },
  ],
}

const nonBlank = (s: string | undefined): s is string => s !== undefined && s.trim() !== ''

const patientResource = (id: string, patientId: string, patient: ReferralPatient | null): FhirResource => {
  if (patient === null) return { resourceType: 'Patient', id: fhirId(id), meta: REDACTED }
  const telecom = [
    ...(nonBlank(patient.email) ? [{ system: 'email', value: patient.email }] : []),
    ...(nonBlank(patient.phone) ? [{ system: 'phone', value: patient.phone }] : []),
  ]
  const language = patient.communication?.language
  return {
    resourceType: 'Patient',
    id: fhirId(id),
    identifier: [
      { system: FHIR_SYSTEMS.patient, value: patientId },
      ...(nonBlank(patient.healthNumber)
        ? [{ system: FHIR_SYSTEMS.healthNumber, value: patient.healthNumber }]
        : []),
    ],
    name: [
      {
        ...(nonBlank(patient.familyName) ? { family: patient.familyName } : {}),
        ...(nonBlank(patient.givenName) ? { given: [patient.givenName] } : {}),
      },
    ],
    birthDate: patient.dateOfBirth,
    ...(telecom.length > 0 ? { telecom } : {}),
    ...(nonBlank(patient.address) ? { address: [{ text: patient.address }] } : {}),
    ...(nonBlank(language) ? { communication: [{ language: { text: language }, preferred: true }] } : {}),
  }
}

const organization = (practiceId: PracticeId): FhirResource => ({
  resourceType: 'Organization',
  id: fhirId(practiceId),
  identifier: [{ system: FHIR_SYSTEMS.practice, value: practiceId }],
  active: true,
})

const practitionerRole = (practiceId: PracticeId, code: 'referrer' | 'specialist'): FhirResource => ({
  resourceType: 'PractitionerRole',
  id: fhirId(practiceId),
  active: true,
  organization: ref('Organization', practiceId),
  code: [{ text: code }],
})

/** The referral as FHIR R4 resources, for a reader with `access` (as `GET /referrals/:id`). */
export const referralToFhir = ({ state, events, access }: FhirReferralSource): FhirReferralExport => {
  const phi = access === 'phi'
  const sent = events.find((e) => e.type === 'ReferralSent')
  const sentPhi = sent?.type === 'ReferralSent' ? sent.data.phi : null
  const forgotten = sentPhi !== null && isRedactedPhi(sentPhi)
  const patient = phi && sentPhi !== null && !isRedactedPhi(sentPhi) ? sentPhi.patient : null
  const reason = phi && sentPhi !== null && !isRedactedPhi(sentPhi) ? sentPhi.reason : null
  // The patient's FHIR id is derived from the referral, not from the (pseudonymous) patient id, so
  // a redacted export does not link the referrals of one patient.
  const patientKey = `${state.referralId}.patient`
  const recipient = phi ? state.recipientPracticeId : null
  const referralRef = ref('ServiceRequest', state.referralId)
  const patientRef = ref('Patient', patientKey)
  const identifier = [{ system: FHIR_SYSTEMS.referral, value: state.referralId }]

  let location: string | null = null
  let cancelReason: string | null = null
  for (const e of events) {
    if (e.type === 'AppointmentScheduled' || e.type === 'AppointmentRescheduled')
      location = phi ? phiString(e.data.phi, 'location') : null
    if (e.type === 'ReferralCancelled') cancelReason = e.data.reasonCode
  }

  const code = {
    coding: [
      { system: FHIR_SYSTEMS.specialty, code: state.specialtyId },
      { system: FHIR_SYSTEMS.category, code: state.category.categoryId },
      ...(state.category.subcategoryId === undefined
        ? []
        : [{ system: FHIR_SYSTEMS.category, code: state.category.subcategoryId }]),
      // The SNOMED CT / LOINC codings the referral arrived with (FHIR import), as they came.
      ...(events.find((e) => e.type === 'ReferralSent')?.data.codings ?? []),
    ],
  }

  const documentReferences: FhirResource[] = []
  const communications: FhirResource[] = []
  const messageParties: PracticeId[] = []
  if (phi) {
    for (const e of events) {
      if (
        e.type === 'AttachmentAdded' &&
        !documentReferences.some((d) => d.id === fhirId(e.data.attachmentId))
      ) {
        const fileName = phiString(e.data.phi, 'fileName')
        documentReferences.push({
          resourceType: 'DocumentReference',
          id: fhirId(e.data.attachmentId),
          identifier: [
            { system: FHIR_SYSTEMS.attachment, value: e.data.attachmentId },
            { system: FHIR_SYSTEMS.attachmentSha256, value: e.data.sha256 },
          ],
          status: 'current',
          subject: patientRef,
          content: [
            {
              attachment: {
                contentType: e.data.contentType,
                size: e.data.sizeBytes,
                url: `/referrals/${encodeURIComponent(state.referralId)}/attachments/${encodeURIComponent(e.data.attachmentId)}`,
                ...(fileName === null ? {} : { title: fileName }),
              },
            },
          ],
          context: { related: [referralRef] },
        })
      }
      if (e.type === 'MessagePosted' && !communications.some((c) => c.id === fhirId(e.data.messageId))) {
        const body = phiString(e.data.phi, 'body')
        const to =
          e.data.fromPracticeId === state.senderPracticeId
            ? state.recipientPracticeId
            : state.senderPracticeId
        messageParties.push(e.data.fromPracticeId, ...(to === null ? [] : [to]))
        communications.push({
          resourceType: 'Communication',
          id: fhirId(e.data.messageId),
          identifier: [{ system: FHIR_SYSTEMS.message, value: e.data.messageId }],
          basedOn: [referralRef],
          status: 'completed',
          subject: patientRef,
          sent: e.data.postedAt,
          sender: ref('Organization', e.data.fromPracticeId),
          ...(to === null ? {} : { recipient: [ref('Organization', to)] }),
          ...(body === null ? {} : { payload: [{ contentString: body }] }),
        })
      }
    }
  }

  // An Appointment is exported only when its duration is known: R4 requires `end` next to `start`
  // on a booked/fulfilled/noshow Appointment (invariants app-2, app-3) and the engine never invents
  // one. Without a duration the scheduled start goes to `ServiceRequest.occurrenceDateTime`.
  const scheduled = phi && recipient !== null ? state.appointment : null
  const durationMinutes = scheduled?.durationMinutes ?? null
  const appointment: FhirResource | null =
    scheduled !== null && durationMinutes !== null && recipient !== null
      ? {
          resourceType: 'Appointment',
          id: fhirId(state.referralId),
          status:
            state.status === 'cancelled'
              ? 'cancelled'
              : scheduled.noShow
                ? 'noshow'
                : state.status === 'completed'
                  ? 'fulfilled'
                  : 'booked',
          basedOn: [referralRef],
          start: scheduled.at,
          end: addMillis(scheduled.at, durationMinutes * 60_000),
          minutesDuration: durationMinutes,
          ...(location === null ? {} : { comment: location }),
          participant: [
            { actor: patientRef, status: 'accepted' },
            { actor: ref('PractitionerRole', recipient), status: 'accepted' },
          ],
        }
      : null

  // ---- lineage: a redirect keeps the referral (same id, same stream) but replaces the request as
  // it stood (`ServiceRequest.replaces`); each delivery to a practice is a Task `partOf` the
  // referral's Task, so re-routes after a decline or an expiry read as a history of tasks.
  const redirectKey = (k: number) => `${state.referralId}.redirect-${k}`
  const replacedServiceRequests: FhirResource[] = []
  const lineagePractices: PracticeId[] = []
  interface Delivery {
    readonly n: number
    readonly practiceId: PracticeId
    readonly at: string
    readonly redirectsBefore: number
    end: { readonly kind: 'declined' | 'expired'; readonly at: string; readonly reason?: string } | null
  }
  const deliveries: Delivery[] = []
  let target: ReferralTarget | null = sent?.type === 'ReferralSent' ? sent.data.target : null
  for (const e of events) {
    if (e.type === 'ReferralRedirected') {
      const k = replacedServiceRequests.length + 1
      const before = phi && target?.kind === 'direct' ? target.practiceId : null
      if (before !== null) lineagePractices.push(before)
      replacedServiceRequests.push({
        resourceType: 'ServiceRequest',
        id: fhirId(redirectKey(k)),
        ...(k > 1 ? { replaces: [ref('ServiceRequest', redirectKey(k - 1))] } : {}),
        status: 'revoked',
        intent: 'order',
        subject: patientRef,
        // Only the first request's time is known: the engine does not time a redirect.
        ...(k === 1 ? { authoredOn: state.sentAt } : {}),
        requester: practiceRef('PractitionerRole', state.senderPracticeId),
        ...(before === null ? {} : { performer: [practiceRef('Organization', before)] }),
      })
      target = e.data.target
    }
    if (e.type === 'ReferralDelivered' && !deliveries.some((d) => d.n === e.data.deliveryNo))
      deliveries.push({
        n: e.data.deliveryNo,
        practiceId: e.data.recipientPracticeId,
        at: e.data.deliveredAt,
        redirectsBefore: replacedServiceRequests.length,
        end: null,
      })
    if (e.type === 'ReferralDeclined' || e.type === 'ReferralExpired') {
      const d = deliveries.find((x) => x.n === e.data.deliveryNo && x.practiceId === e.data.practiceId)
      if (d !== undefined && d.end === null)
        d.end =
          e.type === 'ReferralDeclined'
            ? { kind: 'declined', at: e.data.declinedAt, reason: e.data.reasonCode }
            : { kind: 'expired', at: e.data.expiredAt }
    }
  }
  const redirects = replacedServiceRequests.length
  const deliveryTasks: FhirResource[] = phi
    ? deliveries.map((d) => {
        const live = d.end === null && d.n === state.deliveryNo && d.practiceId === state.recipientPracticeId
        const liveEnd =
          live && state.status === 'completed'
            ? state.completedAt
            : live && state.status === 'cancelled'
              ? state.cancelledAt
              : null
        lineagePractices.push(d.practiceId)
        return {
          resourceType: 'Task',
          id: fhirId(`${state.referralId}.delivery-${d.n}`),
          basedOn: [
            d.redirectsBefore < redirects
              ? ref('ServiceRequest', redirectKey(d.redirectsBefore + 1))
              : referralRef,
          ],
          partOf: [ref('Task', state.referralId)],
          // Declined and expired (auto-declined) deliveries were refused; a delivery that ended
          // without a recorded answer (not reachable by commands) is cancelled.
          status: d.end !== null ? 'rejected' : live ? FHIR_TASK_STATUS[state.status] : 'cancelled',
          businessStatus: {
            coding: [
              {
                system: FHIR_SYSTEMS.businessStatus,
                code: d.end !== null ? d.end.kind : live ? fhirBusinessStatus(state) : 'superseded',
              },
            ],
          },
          ...(d.end?.reason === undefined
            ? {}
            : { statusReason: { coding: [{ system: FHIR_SYSTEMS.declineReason, code: d.end.reason }] } }),
          intent: 'order',
          focus:
            d.redirectsBefore < redirects
              ? ref('ServiceRequest', redirectKey(d.redirectsBefore + 1))
              : referralRef,
          for: patientRef,
          executionPeriod: {
            start: d.at,
            ...(d.end !== null ? { end: d.end.at } : liveEnd === null ? {} : { end: liveEnd }),
          },
          owner: ref('Organization', d.practiceId),
        }
      })
    : []

  const serviceRequest: FhirResource = {
    resourceType: 'ServiceRequest',
    id: fhirId(state.referralId),
    identifier,
    status: FHIR_SERVICE_REQUEST_STATUS[state.status],
    intent: 'order',
    category: [
      { coding: [{ system: 'http://snomed.info/sct', code: '3457005', display: 'Patient referral' }] },
    ],
    priority: FHIR_PRIORITY[state.urgency],
    code,
    subject: patientRef,
    ...(scheduled !== null && appointment === null ? { occurrenceDateTime: scheduled.at } : {}),
    authoredOn: state.sentAt,
    ...(redirects === 0 ? {} : { replaces: [ref('ServiceRequest', redirectKey(redirects))] }),
    requester: practiceRef('PractitionerRole', state.senderPracticeId),
    ...(recipient === null ? {} : { performer: [practiceRef('PractitionerRole', recipient)] }),
    locationCode: [{ coding: [{ system: FHIR_SYSTEMS.region, code: state.regionId }] }],
    ...(reason === null || reason.trim() === '' ? {} : { reasonCode: [{ text: reason }] }),
    ...(documentReferences.length === 0
      ? {}
      : { supportingInfo: documentReferences.map((d) => ({ reference: `DocumentReference/${d.id}` })) }),
  }

  const statusReason =
    state.status === 'returned'
      ? state.returnedReason
      : state.status === 'cancelled' && cancelReason !== null
        ? cancelReason
        : null
  const task: FhirResource = {
    resourceType: 'Task',
    id: fhirId(state.referralId),
    identifier,
    basedOn: [referralRef],
    status: FHIR_TASK_STATUS[state.status],
    businessStatus: { coding: [{ system: FHIR_SYSTEMS.businessStatus, code: fhirBusinessStatus(state) }] },
    ...(statusReason === null
      ? {}
      : { statusReason: { coding: [{ system: FHIR_SYSTEMS.statusReason, code: statusReason }] } }),
    intent: 'order',
    priority: FHIR_PRIORITY[state.urgency],
    code: {
      coding: [
        {
          system: 'http://hl7.org/fhir/CodeSystem/task-code',
          code: 'fulfill',
          display: 'Fulfill the focal request',
        },
      ],
    },
    focus: referralRef,
    for: patientRef,
    authoredOn: state.sentAt,
    requester: ref('PractitionerRole', state.senderPracticeId),
    ...(recipient === null ? {} : { owner: ref('PractitionerRole', recipient) }),
  }

  const practices: [PracticeId, 'referrer' | 'specialist'][] = [
    [state.senderPracticeId, 'referrer'],
    ...(recipient === null || recipient === state.senderPracticeId
      ? []
      : [[recipient, 'specialist'] as [PracticeId, 'specialist']]),
  ]
  // Every practice a resource points at (a message author may be a former recipient).
  const orgIds = [
    ...new Set<PracticeId>([...practices.map(([p]) => p), ...messageParties, ...lineagePractices]),
  ]
  return {
    serviceRequest,
    task,
    patient: patientResource(patientKey, state.patientId, patient),
    organizations: orgIds.map(organization),
    practitionerRoles: practices.map(([p, c]) => practitionerRole(p, c)),
    documentReferences,
    communications,
    appointment,
    deliveryTasks,
    replacedServiceRequests,
    patientForgotten: forgotten,
  }
}

/** Every resource of an export, ServiceRequest first. */
export const fhirExportResources = (x: FhirReferralExport): readonly FhirResource[] => [
  x.serviceRequest,
  x.task,
  ...x.replacedServiceRequests,
  ...x.deliveryTasks,
  x.patient,
  ...x.organizations,
  ...x.practitionerRoles,
  ...x.documentReferences,
  ...x.communications,
  ...(x.appointment === null ? [] : [x.appointment]),
]

/**
 * A `collection` Bundle of the export. `baseUrl` (e.g. `https://host/fhir`) makes each
 * `fullUrl`; `timestamp` is the caller's clock (the core has none).
 */
export const referralFhirBundle = (
  x: FhirReferralExport,
  baseUrl: string,
  timestamp: string,
): FhirResource => ({
  resourceType: 'Bundle',
  type: 'collection',
  timestamp,
  entry: fhirExportResources(x).map((resource) => ({
    fullUrl: `${baseUrl.replace(/\/$/, '')}/${resource.resourceType}/${resource.id}`,
    resource,
  })),
})

/** The resource types the export produces, as listed in the CapabilityStatement. */
export const FHIR_EXPORTED_TYPES = [
  'ServiceRequest',
  'Task',
  'Patient',
  'Organization',
  'PractitionerRole',
  'DocumentReference',
  'Communication',
  'Appointment',
] as const

/**
 * The CapabilityStatement of `GET /fhir/metadata`: exactly what is served — `read` of
 * ServiceRequest and Task, `create` of ServiceRequest. The other resource types appear only inside the referral Bundle
 * (`GET /referrals/{id}/fhir`), which is not a FHIR interaction, so they are not listed.
 */
export const fhirCapabilityStatement = (date: string, software: { name: string; version: string }) => ({
  resourceType: 'CapabilityStatement',
  status: 'active',
  date,
  kind: 'instance',
  software,
  implementation: {
    description: 'Referral engine FHIR R4 export, and import of a referral as a ServiceRequest',
  },
  fhirVersion: '4.0.1',
  format: ['application/fhir+json'],
  rest: [
    {
      mode: 'server',
      documentation:
        'Read of ServiceRequest and Task; create of ServiceRequest (with a contained Patient: a new referral). Authentication and visibility as the referral API: a referral the caller has no part in is 404.',
      resource: ['ServiceRequest', 'Task'].map((type) => ({
        type,
        interaction: type === 'ServiceRequest' ? [{ code: 'read' }, { code: 'create' }] : [{ code: 'read' }],
        versioning: 'no-version',
        readHistory: false,
        updateCreate: false,
      })),
    },
  ],
})
