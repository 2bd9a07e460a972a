import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRoutesTestApp, CANARY_NAME, CANARY_REASON, type RoutesTestApp } from './testing-routes.js'

describe('FHIR R4 routes', () => {
  let t: RoutesTestApp
  beforeAll(async () => {
    t = await buildRoutesTestApp()
    await t.ok('gp', 'POST', '/referrals', t.referral('fh-1'))
    await t.ok('spec', 'POST', '/referrals/fh-1/accept', {})
    await t.ok('spec', 'POST', '/referrals/fh-1/appointment', { at: '2026-05-01T10:00:00.000Z' })
    await t.ok('gp', 'POST', '/referrals/fh-1/messages', { messageId: 'm-1', phi: { body: 'see you' } })
    // A referral spec-a declined: spec stays a former recipient (no PHI).
    await t.ok('gp', 'POST', '/referrals', t.referral('fh-2'))
    await t.ok('spec', 'POST', '/referrals/fh-2/decline', { reasonCode: 'capacity' })
  })
  afterAll(async () => {
    await t.app.close()
  })

  const phiReads = () => t.store.snapshot().filter((e) => e.type === 'PhiAccessed').length

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
