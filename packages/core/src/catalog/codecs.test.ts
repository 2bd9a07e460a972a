import { isLeft, isRight } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { type SpecialtyId, unsafeId } from '../shared/ids.js'
import { CatalogCommandPayload, CatalogEvent } from './codecs.js'
import { catalogStreamId, specialtyIdFromStreamId } from './stream.js'

describe('CatalogCommandPayload', () => {
  it('decodes a proposal with and without parent and drops unknown fields', () => {
    const top = CatalogCommandPayload.decode({
      type: 'ProposeCategory',
      data: { categoryId: 'knee', name: 'Knee', x: 1 },
    })
    expect(isRight(top) && top.right).toEqual({
      type: 'ProposeCategory',
      data: { categoryId: 'knee', name: 'Knee' },
    })
    const sub = CatalogCommandPayload.decode({
      type: 'ProposeCategory',
      data: { categoryId: 'arthro', name: 'A', parentId: 'knee' },
    })
    expect(isRight(sub) && sub.right).toEqual({
      type: 'ProposeCategory',
      data: { categoryId: 'arthro', name: 'A', parentId: 'knee' },
    })
  })

  it('rejects bad ids and unknown types', () => {
    expect(
      isLeft(CatalogCommandPayload.decode({ type: 'ApproveCategory', data: { categoryId: 'a b' } })),
    ).toBe(true)
    expect(isLeft(CatalogCommandPayload.decode({ type: 'ApproveCategory', data: {} }))).toBe(true)
    expect(isLeft(CatalogCommandPayload.decode({ type: 'DeleteCategory', data: { categoryId: 'a' } }))).toBe(
      true,
    )
  })
})

describe('coding map payloads', () => {
  it('decodes SNOMED CT and LOINC mappings and refuses other systems', () => {
    const ok = CatalogCommandPayload.decode({
      type: 'MapCoding',
      data: { system: 'http://snomed.info/sct', code: '72696002', categoryId: 'knee' },
    })
    expect(isRight(ok) && ok.right).toEqual({
      type: 'MapCoding',
      data: { system: 'http://snomed.info/sct', code: '72696002', categoryId: 'knee' },
    })
    expect(
      isRight(
        CatalogCommandPayload.decode({
          type: 'UnmapCoding',
          data: { system: 'http://loinc.org', code: '11488-4' },
        }),
      ),
    ).toBe(true)
    expect(
      isLeft(
        CatalogCommandPayload.decode({
          type: 'MapCoding',
          data: { system: 'http://hl7.org/fhir/sid/icd-10', code: 'M17', categoryId: 'knee' },
        }),
      ),
    ).toBe(true)
  })
})

describe('CatalogEvent', () => {
  it('round-trips events through JSON', () => {
    const events = [
      { type: 'SpecialtyDefined', data: { specialtyId: 'ortho', name: 'Orthopedics' } },
      {
        type: 'CategoryProposed',
        data: { specialtyId: 'ortho', categoryId: 'knee', name: 'Knee', parentId: null, proposedBy: 'u1' },
      },
      {
        type: 'CategoryRenamed',
        data: { specialtyId: 'ortho', categoryId: 'knee', previous: 'Knee', name: 'Knees' },
      },
      { type: 'CategoryRetired', data: { specialtyId: 'ortho', categoryId: 'knee' } },
    ]
    for (const event of events) {
      const decoded = CatalogEvent.decode(JSON.parse(JSON.stringify(event)))
      expect(isRight(decoded) && CatalogEvent.encode(decoded.right)).toEqual(event)
    }
  })

  it('requires parentId to be present (null for top level)', () => {
    const event = {
      type: 'CategoryProposed',
      data: { specialtyId: 'o', categoryId: 'k', name: 'K', proposedBy: 'u' },
    }
    expect(isLeft(CatalogEvent.decode(event))).toBe(true)
  })
})

describe('catalog streams', () => {
  it('names the stream catalog-<specialtyId> and reads the id back', () => {
    expect(catalogStreamId(unsafeId<SpecialtyId>('ortho'))).toBe('catalog-ortho')
    expect(specialtyIdFromStreamId('catalog-ortho')).toBe('ortho')
    expect(specialtyIdFromStreamId('practice-ortho')).toBeNull()
    expect(specialtyIdFromStreamId('catalog-')).toBeNull()
  })
})
