import {
  catalogCodingResolver,
  createEngine,
  createInMemoryEventStore,
  type Instant,
  manualClock,
  sequentialUuids,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { seedDemo } from './demo.js'

describe('demo data coding map', () => {
  it('maps real SNOMED CT concepts to the demo categories, which FHIR import can then resolve', async () => {
    const clock = manualClock('2026-04-01T09:00:00.000Z' as Instant)
    const engine = createEngine({ store: createInMemoryEventStore({ clock }), clock, ids: sequentialUuids() })
    expect(await seedDemo(engine)).toBe(true)
    const all = await engine.catalog.all()
    if (E.isLeft(all)) throw new Error('catalogs not read')
    expect(all.right.map((c) => [c.specialtyId, c.codings])).toEqual([
      [
        'orthopedics',
        [
          { system: 'http://snomed.info/sct', code: '72696002', categoryId: 'knee' },
          { system: 'http://snomed.info/sct', code: '29836001', categoryId: 'hip' },
          { system: 'http://snomed.info/sct', code: '609588000', categoryId: 'knee-arthroplasty' },
        ],
      ],
    ])
    const resolve = catalogCodingResolver(all.right)
    expect(resolve('http://snomed.info/sct', '609588000')).toEqual([
      { specialtyId: 'orthopedics', categoryId: 'knee-arthroplasty', parentId: 'knee' },
    ])
    expect(resolve('http://loinc.org', '11488-4')).toEqual([])
  })
})
