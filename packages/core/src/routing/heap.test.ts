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
