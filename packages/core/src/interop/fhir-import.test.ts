import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import {
  type CatalogEvent,
  catalogInitialState,
  type ExistingCatalog,
  evolveCatalog,
} from '../catalog/index.js'
import type { ReferralEvent } from '../referral/codecs.js'
import { referralFixtures } from '../referral/fixtures.js'
import { evolveReferral, initialReferralState, type ReferralAggregate } from '../referral/state.js'
import { referralToFhir } from './fhir.js'
import {
  catalogCodingResolver,
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
      E.left(['subject.reference']),
    )
  })

  it('a lone ServiceRequest whose subject is not contained is refused at subject.reference (nothing is fetched)', () => {
    const good = exportOf({
      referralId: 'r-ref',
      senderPracticeId: 'clinic',
      patientId: 'clinic:pat-9',
      phi: {
        patient: { givenName: 'Canary-Given', familyName: 'Canary-Family', dateOfBirth: '1980-03-04' },
        reason: 'x',
      },
      specialtyId: 'ortho',
      category: { categoryId: 'knee' },
      regionId: 'north',
      urgency: 'routine',
      target: { kind: 'pooled' },
    }) as unknown as Record<string, unknown>
    for (const reference of [
      'Patient/patient', // the contained Patient's id, but not as `#patient`
      'Patient/unknown-9',
      'https://other.example/fhir/Patient/123',
      'urn:uuid:0b7f3c2e-1111-4222-8333-444455556666',
    ])
      expect(fhirReferralImport({ ...good, subject: { reference } })).toEqual(E.left(['subject.reference']))
    // A logical reference (identifier only) or no subject at all.
    expect(fhirReferralImport({ ...good, subject: { identifier: { value: 'Canary-Given' } } })).toEqual(
      E.left(['subject']),
    )
    const { subject: _s, ...noSubject } = good
    expect(fhirReferralImport(noSubject)).toEqual(E.left(['subject']))
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

    it('resolves a Patient contained in the ServiceRequest entry, and absolute fullUrls (by URL, or Patient/<id> on the same base)', () => {
      const expected = fhirServiceRequestToSendReferral(single)
      const contained = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ fullUrl: 'urn:uuid:5f0c9e1a-0000-4000-8000-000000000009', resource: single }],
      }
      expect(fhirReferralImport(contained)).toEqual(expected)
      const absolute = (subject: string, srFullUrl?: string) => ({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'https://clinic.example/fhir/Patient/p1', resource: { ...patient, id: 'p1' } },
          {
            ...(srFullUrl === undefined ? {} : { fullUrl: srFullUrl }),
            resource: { ...serviceRequest, subject: { reference: subject } },
          },
        ],
      })
      expect(fhirReferralImport(absolute('https://clinic.example/fhir/Patient/p1'))).toEqual(expected)
      expect(
        fhirReferralImport(absolute('Patient/p1', 'https://clinic.example/fhir/ServiceRequest/s1')),
      ).toEqual(expected)
      expect(fhirReferralImport(absolute('Patient/p1/_history/2'))).toEqual(expected)
    })

    it('refuses references it cannot resolve to exactly one Patient of the Bundle, at subject.reference', () => {
      const unresolved = E.left(['Bundle.entry[1].resource.subject.reference'])
      // Another server (absolute URL not in the Bundle), an unknown uuid, an unknown id, an unknown #id.
      for (const subject of [
        'https://elsewhere.example/fhir/Patient/p1',
        'urn:uuid:5f0c9e1a-0000-4000-8000-00000000ffff',
        'Patient/p2',
        '#p1',
      ])
        expect(fhirReferralImport(bundle(subject))).toEqual(unresolved)
      // Patient/<id> whose entry is on another service base than the ServiceRequest's.
      const otherBase = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'https://elsewhere.example/fhir/Patient/p1', resource: { ...patient, id: 'p1' } },
          {
            fullUrl: 'https://clinic.example/fhir/ServiceRequest/s1',
            resource: { ...serviceRequest, subject: { reference: 'Patient/p1' } },
          },
        ],
      }
      expect(fhirReferralImport(otherBase)).toEqual(unresolved)
      // The reference names an entry that is not a Patient.
      const notPatient = bundle('urn:uuid:5f0c9e1a-0000-4000-8000-000000000001', {
        resourceType: 'Practitioner',
        name: [{ family: 'Canary-Family' }],
      })
      expect(fhirReferralImport(notPatient)).toEqual(unresolved)
      // Two Patient entries answer to Patient/p1: ambiguous.
      const twice = bundle('Patient/p1')
      const doubled = { ...twice, entry: [...twice.entry, { resource: { ...patient, id: 'p1' } }] }
      expect(fhirReferralImport(doubled)).toEqual(unresolved)
      // Two entries share a fullUrl.
      const dup = bundle('urn:uuid:5f0c9e1a-0000-4000-8000-000000000001')
      const dupEntry = { ...dup, entry: [...dup.entry, dup.entry[0]] }
      expect(fhirReferralImport(dupEntry)).toEqual(E.left(['Bundle.entry[2].fullUrl']))
      for (const r of [notPatient, doubled, otherBase])
        expect(JSON.stringify(fhirReferralImport(r))).not.toContain('Canary')
    })

    it('names Bundle paths when it fails: an unresolved subject, a bad Patient entry, a non-transaction Bundle', () => {
      expect(fhirReferralImport(bundle('Patient/elsewhere'))).toEqual(
        E.left(['Bundle.entry[1].resource.subject.reference']),
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

describe('FHIR import through the catalog coding map (SNOMED CT, LOINC)', () => {
  const SCT = 'http://snomed.info/sct'
  const LOINC = 'http://loinc.org'
  const state = (
    [
      { type: 'SpecialtyDefined', data: { specialtyId: 'ortho', name: 'Orthopedics' } },
      ...[
        ['knee', null],
        ['acl', 'knee'],
      ].flatMap(([categoryId, parentId]) => [
        {
          type: 'CategoryProposed',
          data: { specialtyId: 'ortho', categoryId, name: categoryId, parentId, proposedBy: 'root' },
        },
        { type: 'CategoryApproved', data: { specialtyId: 'ortho', categoryId } },
      ]),
      {
        type: 'CodingMapped',
        data: { specialtyId: 'ortho', system: SCT, code: '72696002', categoryId: 'knee' },
      },
      {
        type: 'CodingMapped',
        data: { specialtyId: 'ortho', system: SCT, code: '239720000', categoryId: 'acl' },
      },
      {
        type: 'CodingMapped',
        data: { specialtyId: 'ortho', system: LOINC, code: '11488-4', categoryId: 'knee' },
      },
    ] as unknown as CatalogEvent[]
  ).reduce(evolveCatalog, catalogInitialState) as ExistingCatalog
  const codings = catalogCodingResolver([state])
  const base = exportOf({
    referralId: 'r-1',
    senderPracticeId: 'clinic',
    patientId: 'clinic:pat-1',
    phi: { patient: { givenName: 'G', familyName: 'F', dateOfBirth: '1980-03-04' }, reason: 'x' },
    specialtyId: 'ortho',
    category: { categoryId: 'knee' },
    regionId: 'north',
    urgency: 'routine',
    target: { kind: 'pooled' },
  }) as unknown as Record<string, unknown>
  const withCodes = (
    code: readonly { system: string; code: string }[],
    extra: Record<string, unknown> = {},
  ) => ({
    ...base,
    code: { coding: code },
    ...extra,
  })
  const categoryOf = (input: unknown) => {
    const r = fhirServiceRequestToSendReferral(input, { codings })
    return E.isRight(r) ? { specialtyId: r.right.specialtyId, category: r.right.category } : r.left
  }

  it('reads the specialty and category from a mapped SNOMED CT code; a mapped subcategory brings its parent', () => {
    expect(categoryOf(withCodes([{ system: SCT, code: '72696002' }]))).toEqual({
      specialtyId: 'ortho',
      category: { categoryId: 'knee' },
    })
    expect(categoryOf(withCodes([{ system: SCT, code: '239720000' }]))).toEqual({
      specialtyId: 'ortho',
      category: { categoryId: 'knee', subcategoryId: 'acl' },
    })
  })

  it('carries the standard codings onto the SendReferral data, once each, with their display', () => {
    const r = fhirServiceRequestToSendReferral(
      withCodes([{ system: SCT, code: '239720000', display: 'ACL' } as { system: string; code: string }], {
        performerType: { coding: [{ system: SCT, code: '239720000' }] },
      }),
      { codings },
    )
    expect(E.isRight(r) && r.right.codings).toEqual([{ system: SCT, code: '239720000', display: 'ACL' }])
  })

  it('reads LOINC in performerType; ignores the Patient referral category the export writes', () => {
    expect(
      categoryOf(withCodes([], { performerType: { coding: [{ system: LOINC, code: '11488-4' }] } })),
    ).toEqual({ specialtyId: 'ortho', category: { categoryId: 'knee' } })
  })

  it('refuses unmapped, conflicting and unknown-system codings by their path, and standard codes without the map', () => {
    expect(categoryOf(withCodes([{ system: SCT, code: '239873007' }]))).toEqual(['code.coding[0]'])
    expect(
      categoryOf(
        withCodes([
          { system: SCT, code: '72696002' },
          { system: SCT, code: '239720000' },
        ]),
      ),
    ).toEqual(['code.coding[1]'])
    expect(categoryOf(withCodes([{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'M17' }]))).toEqual([
      'code.coding[0]',
    ])
    expect(
      categoryOf(withCodes([], { category: [{ coding: [{ system: SCT, code: '239873007' }] }] })),
    ).toEqual(['category[0].coding[0]'])
    // The engine's own codings and a mapped standard code must agree.
    expect(
      categoryOf(
        withCodes([
          { system: 'urn:referrals:specialty', code: 'ortho' },
          { system: 'urn:referrals:category', code: 'knee' },
          { system: SCT, code: '239720000' },
        ]),
      ),
    ).toEqual(['code.coding[2]'])
    expect(fhirServiceRequestToSendReferral(withCodes([{ system: SCT, code: '72696002' }]))).toEqual(
      E.left(['code.coding[0]']),
    )
  })

  it('refuses a code mapped in two specialties (ambiguous)', () => {
    const other = { ...state, specialtyId: 'sports' } as unknown as ExistingCatalog
    const twice = catalogCodingResolver([state, other])
    expect(
      fhirServiceRequestToSendReferral(withCodes([{ system: SCT, code: '72696002' }]), { codings: twice }),
    ).toEqual(E.left(['code.coding[0]']))
  })
})
