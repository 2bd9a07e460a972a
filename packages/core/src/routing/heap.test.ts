import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RANKED_PREFIX, RankedHeap } from './heap.js'

type Op =
  | { readonly op: 'push' | 'remove' | 'update'; readonly k: number; readonly v: number }
  | { readonly op: 'pop'; readonly k: number; readonly v: number }

/** The order every check uses: by value (often equal, so the exact tie-break decides), then key. */
const order = (values: readonly number[]) => (a: number, b: number) =>
  (values[a] as number) !== (values[b] as number) ? (values[a] as number) - (values[b] as number) : a - b

describe('RankedHeap (sorted prefix + heap: the incremental top candidates)', () => {
  it('property: under any pushes, removals, updates and pops it lists its keys in sorted order', () => {
    const op = fc.record({
      op: fc.constantFrom('push', 'remove', 'update', 'pop'),
      k: fc.integer({ min: 0, max: 59 }),
      // Few distinct values: many ties, decided by the exact comparison.
      v: fc.integer({ min: -8, max: 8 }),
    }) as fc.Arbitrary<Op>
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 400 }), (ops) => {
        const values: number[] = new Array(60).fill(0)
        const cmp = order(values)
        const heap = new RankedHeap(values, (a, b) => cmp(a, b) < 0)
        const members = new Set<number>()
        for (const o of ops) {
          if (o.op === 'push' && !members.has(o.k)) {
            values[o.k] = o.v
            heap.push(o.k)
            members.add(o.k)
          } else if (o.op === 'remove') {
            expect(heap.remove(o.k)).toBe(members.has(o.k))
            members.delete(o.k)
          } else if (o.op === 'update' && members.has(o.k)) {
            values[o.k] = o.v
            heap.update(o.k)
          } else if (o.op === 'pop') {
            const expected = [...members].sort(cmp)[0] ?? -1
            expect(heap.pop()).toBe(expected)
            members.delete(expected)
          }
          const sorted = [...members].sort(cmp)
          expect(heap.size).toBe(sorted.length)
          expect(heap.sortedSize).toBe(Math.min(RANKED_PREFIX, sorted.length))
          expect(Array.from({ length: heap.sortedSize }, (_, i) => heap.sortedAt(i))).toEqual(
            sorted.slice(0, RANKED_PREFIX),
          )
          const walked: number[] = []
          heap.walk((k) => walked.push(k) > 0)
          expect(walked).toEqual(sorted)
          for (let k = 0; k < 60; k++) expect(heap.has(k)).toBe(members.has(k))
        }
      }),
      { numRuns: 150 },
    )
  })

  it('a key that enters the prefix from the heap behind it is in the prefix (found by CI: keys past 15)', () => {
    // Keys 0..17 pushed smallest first: 16 and 17 go behind the prefix and never grow its marks.
    const values = Array.from({ length: 18 }, (_, i) => i)
    const cmp = order(values)
    const heap = new RankedHeap(values, (a, b) => cmp(a, b) < 0)
    for (let k = 0; k < 18; k++) heap.push(k)
    heap.remove(0) // 16 moves into the prefix
    expect(heap.has(16)).toBe(true)
    expect(heap.remove(16)).toBe(true)
    expect(heap.has(16)).toBe(false)
    values[1] = 100 // key 1 becomes the largest: 17 moves into the prefix, 1 goes behind it
    heap.update(1)
    values[17] = 200
    heap.update(17)
    const walked: number[] = []
    heap.walk((k) => walked.push(k) > 0)
    expect(walked).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 17])
    expect(heap.size).toBe(16)
  })

  it('a walk stops where the visitor says, inside the prefix or past it', () => {
    const values = Array.from({ length: 40 }, (_, i) => 40 - i)
    const cmp = order(values)
    const heap = new RankedHeap(values, (a, b) => cmp(a, b) < 0)
    heap.rebuild(values.map((_, i) => i))
    for (const stop of [1, 5, RANKED_PREFIX, RANKED_PREFIX + 7, 40]) {
      const seen: number[] = []
      heap.walk((k) => seen.push(k) < stop)
      expect(seen).toEqual(Array.from({ length: stop }, (_, i) => 39 - i))
    }
    const copy = heap.cloneWith(values, (a, b) => cmp(a, b) < 0)
    heap.remove(39)
    expect([heap.peek(), copy.peek(), copy.size, heap.size]).toEqual([38, 39, 40, 39])
  })
})

// ---- adversarial model-based properties ------------------------------------------------------

/**
 * Operations on a `RankedHeap` of keys 0 … universe − 1, against a sorted array. `rank` picks a
 * member by its place in the order (0: the smallest), so prefix members (ranks 0 … 15) and the
 * first keys behind the prefix (16, 17) are hit as often as any other.
 */
type ModelOp =
  | { readonly op: 'push'; readonly k: number; readonly v: number }
  | {
      readonly op: 'fill'
      readonly k: number
      readonly v: number
      readonly count: number
      readonly ascending: boolean
    }
  | { readonly op: 'removeRank' | 'lowerRank' | 'raiseRank'; readonly rank: number }
  | { readonly op: 'update'; readonly rank: number; readonly v: number }
  | { readonly op: 'remove'; readonly k: number }
  | { readonly op: 'pop' }
  | { readonly op: 'rebuild'; readonly drop: number }
  | { readonly op: 'clone' }
  | { readonly op: 'walk'; readonly stop: number }

/** Ranks around the prefix boundary, anywhere in it, and anywhere at all. */
const rankArb = fc.oneof(
  fc.integer({ min: RANKED_PREFIX - 2, max: RANKED_PREFIX + 2 }),
  fc.nat({ max: RANKED_PREFIX - 1 }),
  fc.nat({ max: 400 }),
)

const modelOpArb = (universe: number, values: fc.Arbitrary<number>): fc.Arbitrary<ModelOp> =>
  fc.oneof(
    {
      arbitrary: fc.record({ op: fc.constant('push' as const), k: fc.nat({ max: universe - 1 }), v: values }),
      weight: 10,
    },
    {
      arbitrary: fc.record({
        op: fc.constant('fill' as const),
        k: fc.nat({ max: universe - 1 }),
        v: values,
        count: fc.integer({ min: 5, max: 60 }),
        ascending: fc.boolean(),
      }),
      weight: 1,
    },
    { arbitrary: fc.record({ op: fc.constant('removeRank' as const), rank: rankArb }), weight: 3 },
    // lowerRank: the member gets the smallest value (a key behind the prefix enters it from behind
    // and pushes the prefix's last key back); raiseRank: the largest (a prefix key goes behind it
    // and the first key behind refills the prefix).
    {
      arbitrary: fc.record({
        op: fc.constantFrom('lowerRank' as const, 'raiseRank' as const),
        rank: rankArb,
      }),
      weight: 3,
    },
    { arbitrary: fc.record({ op: fc.constant('update' as const), rank: rankArb, v: values }), weight: 2 },
    {
      arbitrary: fc.record({ op: fc.constant('remove' as const), k: fc.nat({ max: universe - 1 }) }),
      weight: 1,
    },
    { arbitrary: fc.constant({ op: 'pop' as const }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('rebuild' as const), drop: fc.nat({ max: 3 }) }), weight: 1 },
    { arbitrary: fc.constant({ op: 'clone' as const }), weight: 1 },
    { arbitrary: fc.record({ op: fc.constant('walk' as const), stop: rankArb }), weight: 1 },
  )

/**
 * A heap under test and its model: exact values (BigInt) and their doubles, correctly rounded
 * (the contract of `IndexHeap`'s keys). Values near 2^60 round to the same double in groups of
 * 256, so the exact comparison decides those; others are decided by the doubles.
 */
class Model {
  readonly exact: bigint[]
  readonly approx: number[]
  heap: RankedHeap
  members = new Set<number>()

  constructor(universe: number) {
    this.exact = new Array(universe).fill(0n)
    this.approx = new Array(universe).fill(0)
    this.heap = new RankedHeap(this.approx, this.less)
  }

  readonly less = (a: number, b: number): boolean => this.cmp(a, b) < 0

  readonly cmp = (a: number, b: number): number => {
    const x = this.exact[a] as bigint
    const y = this.exact[b] as bigint
    return x !== y ? (x < y ? -1 : 1) : a - b
  }

  set(k: number, v: bigint): void {
    this.exact[k] = v
    this.approx[k] = Number(v)
  }

  sorted(): number[] {
    return [...this.members].sort(this.cmp)
  }

  /** A copy with its own values and heap (the clone must not see later changes, nor they it). */
  fork(): Model {
    const m = new Model(this.exact.length)
    for (let k = 0; k < this.exact.length; k++) m.set(k, this.exact[k] as bigint)
    m.members = new Set(this.members)
    m.heap = this.heap.cloneWith(m.approx, m.less)
    return m
  }

  check(): void {
    const sorted = this.sorted()
    const h = this.heap
    const prefix = Array.from({ length: h.sortedSize }, (_, i) => h.sortedAt(i))
    const walked: number[] = []
    h.walk((k) => walked.push(k) > 0)
    const wrongHas: number[] = []
    for (let k = 0; k < this.exact.length; k++) if (h.has(k) !== this.members.has(k)) wrongHas.push(k)
    let walkDiffersAt = -1
    for (let i = 0; i < Math.max(walked.length, sorted.length) && walkDiffersAt < 0; i++)
      if (walked[i] !== sorted[i]) walkDiffersAt = i
    // One small comparison per step: an expect per key, or a diff of long arrays when shrinking a
    // failure, costs far more than the heap.
    expect({ size: h.size, prefix, peek: h.peek(), walkDiffersAt, wrongHas }).toEqual({
      size: sorted.length,
      prefix: sorted.slice(0, RANKED_PREFIX),
      peek: sorted[0] ?? -1,
      walkDiffersAt: -1,
      wrongHas: [],
    })
  }
}

const runModel = (universe: number, ops: readonly ModelOp[], toValue: (v: number) => bigint): void => {
  let model = new Model(universe)
  const forks: Model[] = []
  const at = (rank: number): number | undefined => {
    const sorted = model.sorted()
    return sorted.length === 0 ? undefined : sorted[rank % sorted.length]
  }
  const extreme = (sign: 1n | -1n): bigint => {
    let e = 0n
    for (const k of model.members) {
      const v = model.exact[k] as bigint
      if (sign * v > sign * e) e = v
    }
    return e + sign * 1000n
  }
  for (const o of ops) {
    switch (o.op) {
      case 'push':
      case 'fill':
        // The first absent keys from k on (cyclically), so that pools fill up; a fill pushes
        // `count` of them with values spread around v, or ascending from v (so that, once the
        // prefix is full, keys go behind it without ever having been in it).
        for (let n = 0, k = o.k; n < (o.op === 'fill' ? o.count : 1); n++) {
          for (let m = 0; m < universe && model.members.has(k); m++) k = (k + 1) % universe
          if (model.members.has(k)) break
          model.set(k, toValue(o.op === 'push' ? o.v : o.ascending ? o.v + n : o.v + ((n * 7919) % 61) - 30))
          model.heap.push(k)
          model.members.add(k)
        }
        break
      case 'removeRank':
      case 'remove': {
        const k = o.op === 'remove' ? o.k : at(o.rank)
        if (k === undefined) break
        expect(model.heap.remove(k)).toBe(model.members.has(k))
        model.members.delete(k)
        break
      }
      case 'lowerRank':
      case 'raiseRank':
      case 'update': {
        const k = at(o.rank)
        if (k === undefined) break
        model.set(k, o.op === 'update' ? toValue(o.v) : extreme(o.op === 'lowerRank' ? -1n : 1n))
        model.heap.update(k)
        break
      }
      case 'pop': {
        const expected = model.sorted()[0] ?? -1
        expect(model.heap.pop()).toBe(expected)
        model.members.delete(expected)
        break
      }
      case 'rebuild': {
        // Every key but those ≡ drop (mod 4), in index order (not heap order).
        const keys = [...model.members].filter((k) => k % 4 !== o.drop).sort((a, b) => a - b)
        model.heap.rebuild(keys)
        model.members = new Set(keys)
        break
      }
      case 'clone': {
        // The clone goes on; the original is checked at the end against its own model.
        forks.push(model)
        model = model.fork()
        break
      }
      case 'walk': {
        const sorted = model.sorted()
        const stop = Math.min(o.stop, sorted.length) + 1
        const seen: number[] = []
        model.heap.walk((k) => seen.push(k) < stop)
        expect(seen).toEqual(sorted.slice(0, stop))
        break
      }
    }
    model.check()
  }
  for (const f of forks) f.check()
}

/** Values: a few (ties decided by the key), spread out, or near 2^60 (doubles tie in groups of 256). */
const valueKinds = [
  ['few distinct values', fc.integer({ min: -3, max: 3 }), (v: number) => BigInt(v)],
  ['spread values', fc.integer({ min: -1e6, max: 1e6 }), (v: number) => BigInt(v) * 1_000_003n],
  [
    'values whose doubles collide (near 2^60)',
    fc.integer({ min: 0, max: 2_000 }),
    (v: number) => 2n ** 60n + BigInt(v),
  ],
] as const

describe('RankedHeap against a sorted array (adversarial)', () => {
  const scale = Number(process.env.ROUTING_PROPERTY_SCALE ?? 1)
  // Universes at the prefix size, just past it, and well past it (keys beyond the initial 16-slot
  // arrays, so every array grows while keys are in it).
  for (const universe of [RANKED_PREFIX, RANKED_PREFIX + 1, RANKED_PREFIX + 2, 40, 300]) {
    for (const [label, values, toValue] of valueKinds) {
      it(`property: keys 0 … ${universe - 1}, ${label}: prefix, heap, walk and clones follow the model`, () => {
        fc.assert(
          fc.property(
            fc.array(modelOpArb(universe, values), {
              minLength: 1,
              maxLength: universe > 100 ? 400 : 150,
              size: 'max',
            }),
            (ops) => runModel(universe, ops, toValue),
          ),
          { numRuns: (universe > 100 ? 15 : 40) * scale },
        )
      })
    }
  }

  it('every prefix member removed in turn, at sizes 16, 17 and 33, refills from behind in order', () => {
    for (const size of [RANKED_PREFIX, RANKED_PREFIX + 1, 2 * RANKED_PREFIX + 1]) {
      for (const ascending of [true, false]) {
        for (let rank = 0; rank < RANKED_PREFIX; rank++) {
          // Ascending: keys 16 … go behind the full prefix without ever having been in it, then
          // enter it from behind; descending: every key enters at the front of the prefix.
          const ops: ModelOp[] = Array.from({ length: size }, (_, k) => ({
            op: 'push',
            k,
            v: ascending ? k : -k,
          }))
          runModel(
            size,
            [
              ...ops,
              { op: 'removeRank', rank },
              { op: 'removeRank', rank },
              { op: 'pop' },
              { op: 'raiseRank', rank },
            ],
            (v) => BigInt(v),
          )
        }
      }
    }
  })
})
