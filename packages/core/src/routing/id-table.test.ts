import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { IdTable, MAX_PROBE } from './id-table.js'

type Op =
  | { readonly op: 'set'; readonly k: number; readonly v: number | string }
  | { readonly op: 'delete' | 'get'; readonly k: number }

const key = (k: number) => `ref-${k}`

describe('IdTable (the referral book’s table)', () => {
  it('sets, overwrites, deletes and keeps string values apart', () => {
    const t = new IdTable(4)
    t.set('a', 1)
    t.set('b', 'p-outsider')
    t.set('a', 9)
    expect([t.get('a'), t.get('b'), t.get('c'), t.size]).toEqual([9, 'p-outsider', undefined, 2])
    t.set('b', 3)
    t.delete('a')
    t.delete('zz')
    expect([t.get('a'), t.get('b'), t.size]).toEqual([undefined, 3, 1])
    expect([...t.entries()]).toEqual([['b', 3]])
  })

  it('property: behaves as a Map under any sequence of sets, deletes and lookups (with growth)', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        op: fc.constant('set' as const),
        k: fc.nat({ max: 300 }),
        v: fc.oneof(fc.nat({ max: 2 ** 31 - 1 }), fc.constantFrom('x', 'y')),
      }),
      fc.record({ op: fc.constantFrom('delete' as const, 'get' as const), k: fc.nat({ max: 300 }) }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 2_000 }), (ops) => {
        const t = new IdTable(2)
        const m = new Map<string, number | string>()
        let fork: { table: IdTable; map: Map<string, number | string> } | null = null
        for (const [n, o] of ops.entries()) {
          if (o.op === 'set') {
            t.set(key(o.k), o.v)
            m.set(key(o.k), o.v)
          } else if (o.op === 'delete') {
            t.delete(key(o.k))
            m.delete(key(o.k))
          } else expect(t.get(key(o.k))).toBe(m.get(key(o.k)))
          if (n === 500) fork = { table: t.clone(), map: new Map(m) }
        }
        expect(t.size).toBe(m.size)
        expect(new Map(t.entries())).toEqual(m)
        for (let k = 0; k <= 300; k++) expect(t.get(key(k))).toBe(m.get(key(k)))
        // A clone is independent of what its origin did afterwards.
        if (fork !== null) expect(new Map(fork.table.entries())).toEqual(fork.map)
      }),
      { numRuns: 100 },
    )
  })

  it('ids colliding past MAX_PROBE move the table into a Map, and nothing is lost', () => {
    const t = new IdTable(1 << 16)
    const few = new IdTable(1 << 16)
    for (let i = 0; i < 1_000; i++) few.set(`y${i}`, i)
    expect(few.spilled).toBe(false)
    const colliding: string[] = []
    // Brute force ids whose home slot is slot 0 of a 65,536-slot table (a crafted attack).
    const low = (s: string): number => {
      let h = 0x811c9dc5 | 0
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
      h ^= h >>> 16
      h = Math.imul(h, 0x85ebca6b)
      h ^= h >>> 13
      h = Math.imul(h, 0xc2b2ae35)
      h ^= h >>> 16
      return (h === 0 ? 1 : h) & 0xffff
    }
    for (let i = 0; colliding.length < MAX_PROBE + 10; i++) if (low(`x${i}`) === 0) colliding.push(`x${i}`)
    for (const [v, id] of colliding.entries()) {
      t.set(id, v)
    }
    expect(t.spilled).toBe(true)
    expect(t.size).toBe(colliding.length)
    for (const [v, id] of colliding.entries()) expect(t.get(id)).toBe(v)
    t.delete(colliding[0] as string)
    expect([t.get(colliding[0] as string), t.size]).toEqual([undefined, colliding.length - 1])
  })
})
