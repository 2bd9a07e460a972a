import { createRequire } from 'node:module'
import {
  createEngine,
  createInMemoryEventStore,
  type Instant,
  manualClock,
  sequentialUuids,
  type UserId,
} from '@referrals/core'
import { describe, expect, it } from 'vitest'
import { DEMO, seedDemo } from '../demo.js'
import { buildTestApp } from '../testing.js'
import { registerResourceRoutes } from './resources.js'

// The official FHIR R4 JSON schema, as in the other FHIR tests.
const require = createRequire(import.meta.url)
const Validator = require('@asymmetrik/fhir-json-schema-validator') as new () => {
  validate(resource: unknown): unknown[]
}
const validator = new Validator()

type Resource = { resourceType: string; id: string } & Record<string, unknown>

describe('FHIR with the demo dataset (what `npm start` serves)', () => {
  it('a hand-written choose-for-me ServiceRequest coded in SNOMED CT is routed in the demo pool and exports as a schema-valid Bundle', async () => {
    const clock = manualClock('2026-04-01T09:00:00.000Z' as Instant)
    const store = createInMemoryEventStore({ clock })
    const engine = createEngine({ store, clock, ids: sequentialUuids() })
    expect(await seedDemo(engine)).toBe(true)
    const test = await buildTestApp({
      store,
      resolveActor: (userId, roles) => engine.directory.resolveActor(userId as UserId, roles),
      registerRoutes: registerResourceRoutes({ engine, routing: engine.routing }),
    })
    try {
      const token = await test.token({ userId: DEMO.clinic.owner })
      const headers = { authorization: `Bearer ${token}` }
      // No performer: the engine chooses. The category comes only from the SNOMED CT code
      // (609588000, total knee replacement → knee-arthroplasty in the demo coding map).
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:3d1f0c2a-9b8e-4c7d-a6f5-e4d3c2b1a090',
            resource: {
              resourceType: 'Patient',
              identifier: [{ system: 'urn:referrals:patient-id', value: 'demo-fhir-pat' }],
              name: [{ family: 'Example', given: ['Demo'] }],
              birthDate: '1961-03-14',
            },
            request: { method: 'POST', url: 'Patient' },
          },
          {
            fullUrl: 'urn:uuid:8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d',
            resource: {
              resourceType: 'ServiceRequest',
              identifier: [{ system: 'urn:referrals:referral-id', value: 'demo-fhir-1' }],
              status: 'active',
              intent: 'order',
              priority: 'routine',
              code: {
                coding: [
                  { system: 'http://snomed.info/sct', code: '609588000', display: 'Total knee replacement' },
                ],
              },
              subject: { reference: 'urn:uuid:3d1f0c2a-9b8e-4c7d-a6f5-e4d3c2b1a090' },
              requester: {
                identifier: { system: 'urn:referrals:practice-id', value: DEMO.clinic.practiceId },
              },
              locationCode: [{ coding: [{ system: 'urn:referrals:region', code: 'north' }] }],
              reasonCode: [{ text: 'Knee pain on stairs' }],
            },
            request: { method: 'POST', url: 'ServiceRequest' },
          },
        ],
      }
      expect(validator.validate(bundle)).toEqual([])
      const created = await test.app.inject({
        method: 'POST',
        url: '/fhir/ServiceRequest',
        headers: { ...headers, 'content-type': 'application/fhir+json' },
        payload: JSON.stringify(bundle),
      })
      expect(created.statusCode, created.body).toBe(201)

      const exported = await test.app.inject({ method: 'GET', url: '/referrals/demo-fhir-1/fhir', headers })
      expect(exported.statusCode, exported.body).toBe(200)
      expect(exported.headers['content-type']).toMatch(/^application\/fhir\+json/)
      const out = exported.json() as { resourceType: string; entry: { resource: Resource }[] }
      expect(out.resourceType).toBe('Bundle')
      expect(validator.validate(out)).toEqual([])
      for (const { resource } of out.entry)
        expect(validator.validate(resource), resource.resourceType).toEqual([])

      const request = out.entry.map((e) => e.resource).find((r) => r.resourceType === 'ServiceRequest')
      // The SNOMED CT code is carried through, next to the category it mapped to.
      expect(JSON.stringify(request?.code)).toContain('609588000')
      expect(JSON.stringify(request?.code)).toContain('knee-arthroplasty')
      // Routed to one of the demo's north-region specialists (ortho-south-d serves only the south).
      const north = DEMO.specialists
        .filter((s) => (s.regions as readonly string[]).includes('north'))
        .map((s) => s.practiceId)
      const performer = JSON.stringify(request?.performer ?? [])
      expect(north.some((p) => performer.includes(p))).toBe(true)
      expect(performer).not.toContain('ortho-south-d')
    } finally {
      await test.app.close()
    }
  })
})
