import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CanonicalJsonError, canonicalJson } from './canonical-json.js'

describe('canonicalJson', () => {
  it('sorts keys at every depth and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [true, null, 'x'], c: -0.5 } })).toBe(
      '{"a":{"c":-0.5,"d":[true,null,"x"]},"b":1}',
    )
  })

  it('sorts keys by UTF-16 code units, not locale', () => {
    expect(canonicalJson({ b: 1, B: 2, é: 3, a: 4 })).toBe('{"B":2,"a":4,"b":1,"é":3}')
  })

  it('escapes strings as JSON does and writes numbers in shortest form', () => {
    expect(canonicalJson(['a"b\n', 1e21, 0.1, 100, -0])).toBe('["a\\"b\\n",1e+21,0.1,100,0]')
  })

  it('omits undefined object properties, as a JSON store does', () => {
    expect(canonicalJson({ a: undefined, b: 2 })).toBe('{"b":2}')
  })

  it.each([
    ['NaN', { a: Number.NaN }, '$.a'],
    ['Infinity', [Number.POSITIVE_INFINITY], '$[0]'],
    ['bigint', { n: 1n }, '$.n'],
    ['function', { f: () => 1 }, '$.f'],
    ['undefined in an array', [1, undefined], '$[1]'],
    ['a Date', { at: new Date(0) }, '$.at'],
    ['a Map', new Map(), '$'],
    ['undefined', undefined, '$'],
  ])('rejects %s, naming the path', (_name, value, path) => {
    let thrown: unknown
    try {
      canonicalJson(value)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(CanonicalJsonError)
    expect((thrown as CanonicalJsonError).path).toBe(path)
  })

  it('rejects cycles', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => canonicalJson(cyclic)).toThrow(CanonicalJsonError)
  })

  it('does not put values in its error messages', () => {
    expect(() => canonicalJson({ name: 'Jane Canary', n: Number.NaN })).toThrow(/^(?!.*Canary)/)
  })

  it('equals JSON.parse-able output that round-trips to the same value, whatever the key order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value)
        const reparsed = JSON.parse(text)
        expect(canonicalJson(reparsed)).toBe(text)
        expect(reparsed).toEqual(JSON.parse(JSON.stringify(value)))
      }),
    )
  })

  it('does not depend on key insertion order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (record) => {
        const reversed = Object.fromEntries(Object.entries(record).reverse())
        expect(canonicalJson(reversed)).toBe(canonicalJson(record))
      }),
    )
  })
})
