import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { hashOf, IdTable, MAX_PROBE } from './id-table.js'

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
    const low = (s: string): number => hashOf(s) & 0xffff
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

// ---- adversarial model-based properties ------------------------------------------------------

/** `count` ids whose hashes agree in their low 12 bits with `home`: one home slot in any table of up to 4,096 slots. */
const collidingIds = (home: number, count: number, tag: string): string[] => {
  const ids: string[] = []
  for (let i = 0; ids.length < count; i++) if ((hashOf(`${tag}${i}`) & 0xfff) === home) ids.push(`${tag}${i}`)
  return ids
}

/** Pairs of different ids with the same 32-bit hash (a birthday search over a fixed sequence). */
const sameHashPairs = (pairs: number): [string, string][] => {
  const seen = new Map<number, string>()
  const found: [string, string][] = []
  for (let i = 0; found.length < pairs; i++) {
    const id = `c${i}`
    const h = hashOf(id)
    const other = seen.get(h)
    if (other === undefined) seen.set(h, id)
    else found.push([other, id])
  }
  return found
}

const fullCollisions = sameHashPairs(3).flat()

/**
 * The id universe: plain ids; three groups of ids sharing a home slot — slot 0xfff (the last slot
 * of a 4,096-slot table and of every smaller one, so probe runs wrap around to slot 0) and the
 * neighbours 0x800 and 0x801, whose runs interleave — and ids whose whole 32-bit hash is the same,
 * which only the id comparison tells apart.
 */
const universe = [
  ...Array.from({ length: 60 }, (_, k) => `ref-${k}`),
  ...collidingIds(0xfff, 20, 'w'),
  ...collidingIds(0x800, 12, 'a'),
  ...collidingIds(0x801, 12, 'b'),
  ...fullCollisions,
]

type TableOp =
  | { readonly op: 'set'; readonly k: number; readonly v: number | string }
  | { readonly op: 'delete' | 'get' | 'getThenSet'; readonly k: number; readonly v: number }
  | { readonly op: 'getOtherThenSet'; readonly k: number; readonly other: number; readonly v: number }
  | { readonly op: 'clone' }

const tableOpArb = (ids: number): fc.Arbitrary<TableOp> => {
  const k = fc.nat({ max: ids - 1 })
  const v = fc.nat({ max: 2 ** 31 - 1 })
  return fc.oneof(
    {
      arbitrary: fc.record({ op: fc.constant('set' as const), k, v: fc.oneof(v, fc.constantFrom('x', 'y')) }),
      weight: 6,
    },
    { arbitrary: fc.record({ op: fc.constant('delete' as const), k, v }), weight: 4 },
    { arbitrary: fc.record({ op: fc.constant('get' as const), k, v }), weight: 2 },
    // A lookup remembers its slot for the insert that follows: the same id, or another one first.
    { arbitrary: fc.record({ op: fc.constant('getThenSet' as const), k, v }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('getOtherThenSet' as const), k, other: k, v }), weight: 2 },
    { arbitrary: fc.constant({ op: 'clone' as const }), weight: 1 },
  )
}

/** Runs `ops` on a table and a Map side by side; every lookup and, at the end, every entry agree (clones too). */
const runTable = (ids: readonly string[], capacity: number, ops: readonly TableOp[]): IdTable => {
  let t = new IdTable(capacity)
  let m = new Map<string, number | string>()
  const clones: { table: IdTable; map: Map<string, number | string> }[] = []
  for (const o of ops) {
    const id = ids[o.op === 'clone' ? 0 : o.k] as string
    switch (o.op) {
      case 'set':
        t.set(id, o.v)
        m.set(id, o.v)
        break
      case 'delete':
        t.delete(id)
        m.delete(id)
        break
      case 'get':
        expect(t.get(id)).toBe(m.get(id))
        break
      case 'getThenSet':
        expect(t.get(id)).toBe(m.get(id))
        t.set(id, o.v)
        m.set(id, o.v)
        break
      case 'getOtherThenSet': {
        const other = ids[o.other] as string
        expect(t.get(other)).toBe(m.get(other))
        t.set(id, o.v)
        m.set(id, o.v)
        expect(t.get(other)).toBe(m.get(other))
        break
      }
      case 'clone':
        // The original goes on; the clone is kept with a copy of the model and checked at the end.
        clones.push({ table: t, map: new Map(m) })
        t = t.clone()
        m = new Map(m)
        break
    }
    expect(t.size).toBe(m.size)
  }
  // Compared here and reported as a short list: a failing check then costs no large diff, which
  // keeps shrinking a long counterexample fast.
  for (const { table, map } of [...clones, { table: t, map: m }]) {
    const wrong: string[] = []
    const entries = new Map(table.entries())
    if (entries.size !== map.size || table.size !== map.size) wrong.push(`size ${table.size}/${entries.size}`)
    for (const id of ids) {
      if (table.get(id) !== map.get(id) || entries.get(id) !== map.get(id)) wrong.push(id)
    }
    expect(wrong).toEqual([])
  }
  return t
}

describe('IdTable against a Map (adversarial: colliding ids, wrap-around, growth, clones)', () => {
  const scale = Number(process.env.ROUTING_PROPERTY_SCALE ?? 1)

  it('the colliding ids collide: shared home slots and shared 32-bit hashes', () => {
    expect(new Set(collidingIds(0xfff, 20, 'w').map((id) => hashOf(id) & 0xfff))).toEqual(new Set([0xfff]))
    expect(fullCollisions).toHaveLength(6)
    for (let i = 0; i < fullCollisions.length; i += 2) {
      expect(fullCollisions[i]).not.toBe(fullCollisions[i + 1])
      expect(hashOf(fullCollisions[i] as string)).toBe(hashOf(fullCollisions[i + 1] as string))
    }
  })

  it('the universe never spills: its longest probe run, all ids in the largest table it reaches (256 slots), is below MAX_PROBE', () => {
    // Linear probing fills the same slots whatever the order of insertion, and a subset of the ids
    // fills a subset of them (deletion shifts back to that state), so this bounds every run of
    // the properties below. A table of up to 128 slots holds at most 64 ids: no run past MAX_PROBE.
    const slots = new Array<boolean>(256).fill(false)
    for (const id of universe) {
      let i = hashOf(id) & 255
      while (slots[i]) i = (i + 1) & 255
      slots[i] = true
    }
    let longest = 0
    for (let start = 0; start < 256; start++) {
      let n = 0
      while (n < 256 && slots[(start + n) & 255]) n++
      longest = Math.max(longest, n)
    }
    expect(universe.length * 2).toBeLessThanOrEqual(256)
    expect(longest).toBeLessThan(MAX_PROBE)
  })

  for (const capacity of [2, 64]) {
    it(`property: from ${capacity} slots, any sets, deletes, lookups and clones behave as a Map (no spill)`, () => {
      fc.assert(
        fc.property(
          fc.array(tableOpArb(universe.length), { minLength: 1, maxLength: 600, size: 'max' }),
          (ops) => {
            const t = runTable(universe, capacity, ops)
            // At most 44 ids share a run: the table keeps its own hashing.
            expect(t.spilled).toBe(false)
          },
        ),
        { numRuns: 60 * scale },
      )
    })
  }

  it('property: past MAX_PROBE colliding ids it moves into a Map and still behaves as one', () => {
    const crowd = [
      ...collidingIds(0x123, MAX_PROBE + 20, 's'),
      ...Array.from({ length: 20 }, (_, k) => `ref-${k}`),
    ]
    fc.assert(
      fc.property(
        fc.array(tableOpArb(crowd.length), { minLength: 1, maxLength: 600, size: 'max' }),
        (ops) => {
          // Every colliding id first (with string values on some), then the random operations.
          const fill: TableOp[] = crowd.map((_, k) => ({ op: 'set', k, v: k % 3 === 0 ? 'x' : k }))
          const t = runTable(crowd, 64, [...fill, ...ops])
          expect(t.spilled).toBe(true)
        },
      ),
      { numRuns: 30 * scale },
    )
  })
})
