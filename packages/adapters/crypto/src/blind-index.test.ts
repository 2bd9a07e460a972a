import { createHmac, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createHmacBlindIndex, normaliseForBlindIndex } from './blind-index.js'

const key = Buffer.alloc(32, 7)
const index = createHmacBlindIndex({ key })

describe('blind index normalisation', () => {
  it.each([
    ['José  Álvarez', 'jose alvarez'],
    ['JOSE ALVAREZ', 'jose alvarez'],
    ['  Zoë\tÅberg-Müller ', 'zoe aberg muller'],
    ["O'Brien", 'obrien'],
    ['O’Brien', 'obrien'],
    ['Straße', 'strasse'],
    ['Søren Łukasz', 'soren lukasz'],
    ['Ｊａｎｅ　Ｄｏｅ', 'jane doe'],
    ['Nguyễn Văn Anh', 'nguyen van anh'],
    ['François\u0301', 'francois'],
    ['', ''],
  ])('name %j → %j', (input, expected) => {
    expect(normaliseForBlindIndex('patient_name', input)).toBe(expected)
  })

  it.each([
    ['1234-567-890', '1234567890'],
    [' 1234 567 890 AB ', '1234567890'],
    ['１２３４５６７８９０', '1234567890'],
    ['no digits', ''],
  ])('health number %j → %j', (input, expected) => {
    expect(normaliseForBlindIndex('health_number', input)).toBe(expected)
  })
})

describe('HMAC blind index', () => {
  it('is HMAC-SHA256 over field, a zero byte and the normalised value, truncated to 128 bits', () => {
    const expected = createHmac('sha256', key)
      .update('patient_name\u0000jose alvarez')
      .digest()
      .subarray(0, 16)
      .toString('base64url')
    expect(index.token('patient_name', 'José Álvarez')).toBe(expected)
  })

  it('gives equal tokens for spellings that normalise alike, and different ones otherwise', () => {
    expect(index.token('patient_name', 'ZOË  Åberg')).toBe(index.token('patient_name', 'zoe aberg'))
    expect(index.token('health_number', '1234 567 890')).toBe(index.token('health_number', '1234-567-890'))
    expect(index.token('patient_name', 'zoe aberg')).not.toBe(index.token('patient_name', 'zoe aberk'))
  })

  it('separates fields: the same text gives different tokens as a name and as a health number', () => {
    expect(index.token('patient_name', '12345')).not.toBe(index.token('health_number', '12345'))
  })

  it('depends on the key', () => {
    const other = createHmacBlindIndex({ key: Buffer.alloc(32, 8) })
    expect(other.token('patient_name', 'Jane Doe')).not.toBe(index.token('patient_name', 'Jane Doe'))
  })

  it('never contains the value and has a fixed length', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 6 }), (value) => {
        const token = index.token('patient_name', value)
        expect(token).toMatch(/^[A-Za-z0-9_-]{22}$/)
        // Only values long enough that a random 22-character token cannot contain them by chance
        // (a 2-letter value appears in a random token about once in 60 draws: a false alarm).
        const compact = normaliseForBlindIndex('patient_name', value).replace(/ /g, '')
        if (compact.length >= 6) expect(token.toLowerCase()).not.toContain(compact)
      }),
    )
  })

  it('gives one sorted token per distinct name word, each equal to the single-word token', () => {
    const words = index.wordTokens('Marie  Curie-Skłodowska Marie')
    expect(words).toHaveLength(3)
    expect([...words].sort()).toEqual(words)
    expect(words).toContain(index.token('patient_name', 'Sklodowska'))
    expect(words).toContain(index.token('patient_name', 'CURIE'))
  })

  it('refuses a short key', () => {
    expect(() => createHmacBlindIndex({ key: randomBytes(16) })).toThrow(/at least 32 bytes/)
  })
})
