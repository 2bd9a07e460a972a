import { describe, expect, it } from 'vitest'
import { canonicalUuid, isUuid, uuidV5 } from './uuid.js'

// RFC 4122 Appendix C name-space for DNS names.
const DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8'

describe('uuidV5', () => {
  it('matches published test vectors', () => {
    expect(uuidV5(DNS, 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2')
    expect(uuidV5(DNS, 'python.org')).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d')
  })

  it('is deterministic and sensitive to the name', () => {
    expect(uuidV5(DNS, 'a')).toBe(uuidV5(DNS, 'a'))
    expect(uuidV5(DNS, 'a')).not.toBe(uuidV5(DNS, 'b'))
  })

  it('sets version 5 and the RFC variant', () => {
    const id = uuidV5(DNS, 'referral-1')
    expect(id[14]).toBe('5')
    expect(['8', '9', 'a', 'b']).toContain(id[19])
    expect(isUuid(id)).toBe(true)
  })

  it('rejects a namespace that is not a UUID', () => {
    expect(() => uuidV5('not-a-uuid', 'x')).toThrow(TypeError)
  })
})

describe('isUuid / canonicalUuid', () => {
  it('accepts UUIDs in either case and rejects other ids', () => {
    expect(isUuid('2ED6657D-E927-568B-95E1-2665A8AEA6A2')).toBe(true)
    expect(isUuid('evt-000001')).toBe(false)
    expect(isUuid('2ed6657d-e927-568b-95e1-2665a8aea6a')).toBe(false)
    expect(canonicalUuid('2ED6657D-E927-568B-95E1-2665A8AEA6A2')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2')
  })
})
