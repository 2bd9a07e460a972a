import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { ReferralEvent } from '../referral/codecs.js'
import { referralFixtures } from '../referral/fixtures.js'
import { evolveReferral, initialReferralState, type ReferralAggregate } from '../referral/state.js'
import { referralToFhir } from './fhir.js'
import {
  fhirReferralImport,
  fhirServiceRequestToSendReferral,
  fhirServiceRequestWithPatient,
} from './fhir-import.js'

const text = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => s.trim() !== '')
const sendData = fc.record({
  referralId: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,30}$/),
  senderPracticeId: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/),
  local: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/),
  givenName: text,
  familyName: text,
  healthNumber: fc.option(text, { nil: undefined }),
  email: fc.option(fc.constant('p@example.org'), { nil: undefined }),
  address: fc.option(text, { nil: undefined }),
  language: fc.option(fc.constantFrom('en', 'fr'), { nil: undefined }),
  reason: text,
  urgency: fc.constantFrom('routine', 'urgent', 'emergent'),
  direct: fc.option(fc.constantFrom('spec-a', 'spec-b'), { nil: undefined }),
  sub: fc.boolean(),
})

const sentState = (d: Record<string, unknown>): { state: ReferralAggregate; events: ReferralEvent[] } => {
  const events = [
    { type: 'ReferralSent', data: { ...d, sentAt: referralFixtures.t0 } },
    ...(typeof (d.target as { practiceId?: string }).practiceId === 'string'
      ? [
          {
            type: 'ReferralDelivered',
            data: {
              referralId: d.referralId,
              recipientPracticeId: (d.target as { practiceId: string }).practiceId,
              route: 'direct',
              deliveryNo: 1,
              deliveredAt: referralFixtures.t0,
              respondBy: referralFixtures.t0,
            },
          },
        ]
      : []),
  ] as unknown as ReferralEvent[]
  return { state: events.reduce(evolveReferral, initialReferralState) as ReferralAggregate, events }
}

const exportOf = (d: Record<string, unknown>) => {
  const { state, events } = sentState(d)
  return fhirServiceRequestWithPatient(referralToFhir({ state, events, access: 'phi' }))
}

describe('FHIR R4 import of a ServiceRequest with a contained Patient', () => {
  it('export → import → export is equal on every mapped field', () => {
    fc.assert(
      fc.property(sendData, (r) => {
        const data = {
          referralId: r.referralId,
          senderPracticeId: r.senderPracticeId,
          patientId: `${r.senderPracticeId}:${r.local}`,
          phi: {
            patient: {
              givenName: r.givenName,
              familyName: r.familyName,
              dateOfBirth: '1980-03-04',
              ...(r.healthNumber === undefined ? {} : { healthNumber: r.healthNumber }),
              ...(r.email === undefined ? {} : { email: r.email }),
              ...(r.address === undefined ? {} : { address: r.address }),
              ...(r.language === undefined ? {} : { communication: { language: r.language } }),
            },
            reason: r.reason,
          },
          specialtyId: 'ortho',
          category: r.sub ? { categoryId: 'knee', subcategoryId: 'acl' } : { categoryId: 'knee' },
          regionId: 'north',
          urgency: r.urgency,
          target: r.direct === undefined ? { kind: 'pooled' } : { kind: 'direct', practiceId: r.direct },
        }
        const first = exportOf(data)
        const imported = fhirServiceRequestToSendReferral(JSON.parse(JSON.stringify(first)))
        if (E.isLeft(imported)) throw new Error(`import refused: ${imported.left.join(', ')}`)
        expect(imported.right.patientId).toBe(r.local)
        // The engine scopes the patient id by the sender again (as POST /referrals does).
        const second = exportOf({
          ...imported.right,
          patientId: `${r.senderPracticeId}:${imported.right.patientId}`,
        })
        expect(second).toEqual(first)
      }),
      { numRuns: 200 },
    )
  })

  it('bad input is refused with the failing FHIR paths only, never the values', () => {
    expect(fhirServiceRequestToSendReferral({ resourceType: 'Patient' })).toEqual(E.left(['resourceType']))
    const good = exportOf({
      referralId: 'r-1',
      senderPracticeId: 'clinic',
      patientId: 'clinic:pat-1',
      phi: {
        patient: { givenName: 'Canary-Given', familyName: 'Canary-Family', dateOfBirth: '1980-03-04' },
        reason: 'secret-reason',
      },
      specialtyId: 'ortho',
      category: { categoryId: 'knee' },
      regionId: 'north',
      urgency: 'routine',
      target: { kind: 'pooled' },
    }) as unknown as Record<string, unknown> & { contained: Record<string, unknown>[] }
    expect(E.isRight(fhirServiceRequestToSendReferral(good))).toBe(true)
    const noBirth = { ...good, contained: [{ ...good.contained[0], birthDate: undefined }] }
    expect(fhirServiceRequestToSendReferral(noBirth)).toEqual(E.left(['contained[0].birthDate']))
    const badDate = { ...good, contained: [{ ...good.contained[0], birthDate: '1980-13-45' }] }
    const r = fhirServiceRequestToSendReferral(badDate)
    expect(r).toEqual(E.left(['contained[0].dateOfBirth']))
    expect(JSON.stringify(r)).not.toContain('1980-13-45')
    const noReason = { ...good, reasonCode: undefined, priority: 'asap' }
    expect(fhirServiceRequestToSendReferral(noReason)).toEqual(E.left(['priority', 'reasonCode[0].text']))
    expect(fhirServiceRequestToSendReferral({ ...good, subject: { reference: '#nobody' } })).toEqual(
      E.left(['subject']),
    )
  })

  describe('a transaction Bundle with the Patient as its own entry', () => {
    const single = exportOf({
      referralId: 'r-2',
      senderPracticeId: 'clinic',
      patientId: 'clinic:pat-2',
      phi: {
        patient: { givenName: 'Canary-Given', familyName: 'Canary-Family', dateOfBirth: '1975-06-07' },
        reason: 'secret-reason',
      },
      specialtyId: 'ortho',
      category: { categoryId: 'knee' },
      regionId: 'north',
      urgency: 'urgent',
      target: { kind: 'direct', practiceId: 'spec-a' },
    }) as unknown as Record<string, unknown> & { contained: Record<string, unknown>[] }
    const { contained, ...serviceRequest } = single
    const patient = contained[0] as Record<string, unknown>
    const bundle = (subject: string, patientEntry: Record<string, unknown> = patient) => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:5f0c9e1a-0000-4000-8000-000000000001', resource: { ...patientEntry, id: 'p1' } },
        { resource: { ...serviceRequest, subject: { reference: subject } } },
      ],
    })

    it('reads the same referral as the ServiceRequest with the Patient contained, by fullUrl or Patient/<id>', () => {
      const expected = fhirServiceRequestToSendReferral(single)
      expect(E.isRight(expected)).toBe(true)
      expect(fhirReferralImport(bundle('urn:uuid:5f0c9e1a-0000-4000-8000-000000000001'))).toEqual(expected)
      expect(fhirReferralImport(bundle('Patient/p1'))).toEqual(expected)
      // A lone ServiceRequest still goes the contained way.
      expect(fhirReferralImport(single)).toEqual(expected)
    })

    it('names Bundle paths when it fails: an unresolved subject, a bad Patient entry, a non-transaction Bundle', () => {
      expect(fhirReferralImport(bundle('Patient/elsewhere'))).toEqual(
        E.left(['Bundle.entry[1].resource.subject']),
      )
      const noBirth = bundle('Patient/p1', { ...patient, birthDate: undefined })
      expect(fhirReferralImport(noBirth)).toEqual(E.left(['Bundle.entry[0].resource.birthDate']))
      const noReason = bundle('Patient/p1')
      ;(noReason.entry[1]?.resource as Record<string, unknown>).reasonCode = undefined
      expect(fhirReferralImport(noReason)).toEqual(E.left(['Bundle.entry[1].resource.reasonCode[0].text']))
      expect(fhirReferralImport({ ...bundle('Patient/p1'), type: 'collection' })).toEqual(
        E.left(['Bundle.type']),
      )
      expect(fhirReferralImport({ resourceType: 'Bundle', type: 'transaction', entry: [] })).toEqual(
        E.left(['Bundle.entry']),
      )
      expect(JSON.stringify(fhirReferralImport(noBirth))).not.toContain('Canary')
    })
  })
})
