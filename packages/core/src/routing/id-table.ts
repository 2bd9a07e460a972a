/**
 * A hash table from string ids to small non-negative integers (or, rarely, strings): the pool's
 * referral book. It does what a `Map<string, number>` does for the router, with fewer cache misses
 * per decision: open addressing with linear probing over one `Int32Array` of (hash, value) pairs,
 * so looking up an id that is not there (every new referral) reads one run of adjacent slots and
 * never the stored id strings; the id is compared only when its 32-bit hash matches. A lookup
 * remembers where it ended, so the insertion that follows it (decide looks the referral up, evolve
 * records it) does not probe again.
 *
 * Worst case. The hash is fixed (the core has no randomness), and referral ids are chosen by
 * clients, so ids could be crafted to collide. A probe run longer than MAX_PROBE makes the table
 * move its entries into a `Map` (V8's seeded hash) for good: lookups never cost more than
 * MAX_PROBE slot reads before that, and a `Map` operation after.
 */

/** Slots probed before the table gives up on its own hash and moves to a `Map`. */
export const MAX_PROBE = 64

/** Marks a slot whose value is a string (kept in `strings`). */
const STRING = -2

/** The table's hash of an id (never 0: 0 marks an empty slot); exported for the collision tests. */
export const hashOf = (s: string): number => {
  let h = 0x811c9dc5 | 0
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  // Murmur3 finalizer: ids that differ in their last characters spread over the whole table.
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h === 0 ? 1 : h
}

export class IdTable {
  private capacity: number
  private mask: number
  /** slots[2i]: the hash of the id in slot i (0: empty); slots[2i + 1]: its value. */
  private slots: Int32Array
  private keys: (string | undefined)[]
  private count = 0
  private readonly strings = new Map<string, string>()
  /** Once ids collided past MAX_PROBE: every entry lives here instead. */
  private map: Map<string, number | string> | null = null
  /** The last lookup: its id, hash and where it ended (slot, or ~slot to insert at). */
  private lastKey: string | null = null
  private lastHash = 0
  private lastSlot = 0

  constructor(capacity = 64) {
    this.capacity = capacity
    this.mask = capacity - 1
    this.slots = new Int32Array(2 * capacity)
    this.keys = new Array(capacity).fill(undefined)
  }

  /** True once colliding ids made the table move its entries into a Map. */
  get spilled(): boolean {
    return this.map !== null
  }

  get size(): number {
    return this.map === null ? this.count : this.map.size
  }

  /** The slot of `id`, or ~(the empty slot where it would go); -1 … only via ~. Sets the memo. */
  private find(id: string): number {
    if (id === this.lastKey) return this.lastSlot
    const h = hashOf(id)
    const slots = this.slots
    const mask = this.mask
    let i = h & mask
    let probes = 0
    for (;;) {
      const x = slots[2 * i] as number
      if (x === 0) break
      if (x === h && this.keys[i] === id) {
        this.remember(id, h, i)
        return i
      }
      i = (i + 1) & mask
      if (++probes > MAX_PROBE) {
        this.spill()
        return 0
      }
    }
    this.remember(id, h, ~i)
    return ~i
  }

  private remember(id: string, h: number, slot: number): void {
    this.lastKey = id
    this.lastHash = h
    this.lastSlot = slot
  }

  get(id: string): number | string | undefined {
    if (this.map !== null) return this.map.get(id)
    const i = this.find(id)
    if (this.map !== null) return (this.map as Map<string, number | string>).get(id)
    if (i < 0) return undefined
    const v = this.slots[2 * i + 1] as number
    return v === STRING ? this.strings.get(id) : v
  }

  has(id: string): boolean {
    return this.get(id) !== undefined
  }

  /** `value` must be a non-negative integer below 2^31, or a string. */
  set(id: string, value: number | string): void {
    if (this.map !== null) {
      this.map.set(id, value)
      return
    }
    let i = this.find(id)
    if (this.map !== null) {
      ;(this.map as Map<string, number | string>).set(id, value)
      return
    }
    if (i < 0) {
      i = ~i
      this.keys[i] = id
      this.slots[2 * i] = this.lastHash
      this.count++
      this.lastSlot = i
    } else if (this.slots[2 * i + 1] === STRING) this.strings.delete(id)
    if (typeof value === 'string') {
      this.slots[2 * i + 1] = STRING
      this.strings.set(id, value)
    } else this.slots[2 * i + 1] = value
    if (this.count * 2 > this.capacity) this.grow()
  }

  delete(id: string): void {
    if (this.map !== null) {
      this.map.delete(id)
      return
    }
    const found = this.find(id)
    if (this.map !== null) {
      ;(this.map as Map<string, number | string>).delete(id)
      return
    }
    if (found < 0) return
    if (this.slots[2 * found + 1] === STRING) this.strings.delete(id)
    this.count--
    this.lastKey = null
    // Backward-shift deletion: move later entries of the run into the hole if their home allows.
    const slots = this.slots
    const mask = this.mask
    let hole = found
    let j = found
    for (;;) {
      j = (j + 1) & mask
      const h = slots[2 * j] as number
      if (h === 0) break
      const home = h & mask
      // j's entry may move to the hole iff its home is not cyclically in (hole, j].
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        slots[2 * hole] = h
        slots[2 * hole + 1] = slots[2 * j + 1] as number
        this.keys[hole] = this.keys[j]
        hole = j
      }
    }
    slots[2 * hole] = 0
    slots[2 * hole + 1] = 0
    this.keys[hole] = undefined
  }

  /** An independent copy (O(capacity)). */
  clone(): IdTable {
    const c = new IdTable(this.capacity)
    c.slots.set(this.slots)
    c.keys = this.keys.slice()
    c.count = this.count
    for (const [k, v] of this.strings) c.strings.set(k, v)
    c.map = this.map === null ? null : new Map(this.map)
    return c
  }

  /** Every entry (order unspecified). */
  *entries(): IterableIterator<[string, number | string]> {
    if (this.map !== null) {
      yield* this.map
      return
    }
    for (let i = 0; i < this.capacity; i++) {
      const k = this.keys[i]
      if (k === undefined) continue
      const v = this.slots[2 * i + 1] as number
      yield [k, v === STRING ? (this.strings.get(k) as string) : v]
    }
  }

  private grow(): void {
    const oldKeys = this.keys
    const oldSlots = this.slots
    this.capacity *= 2
    this.mask = this.capacity - 1
    this.slots = new Int32Array(2 * this.capacity)
    this.keys = new Array(this.capacity).fill(undefined)
    this.lastKey = null
    const slots = this.slots
    const mask = this.mask
    for (let j = 0; j < oldKeys.length; j++) {
      const h = oldSlots[2 * j] as number
      if (h === 0) continue
      let i = h & mask
      while (slots[2 * i] !== 0) i = (i + 1) & mask
      slots[2 * i] = h
      slots[2 * i + 1] = oldSlots[2 * j + 1] as number
      this.keys[i] = oldKeys[j]
    }
  }

  /** Ids collided past MAX_PROBE: move every entry into a Map (V8's seeded hash), for good. */
  private spill(): void {
    const map = new Map<string, number | string>(this.entries())
    this.map = map
    this.slots = new Int32Array(0)
    this.keys = []
    this.capacity = 0
    this.count = 0
    this.strings.clear()
    this.lastKey = null
  }
}
