/**
 * Keys that differ by more than FLOAT_GAP·|a| + FLOAT_GAP are ordered by their doubles; closer ones
 * by the exact comparison (see `IndexHeap`).
 */
export const FLOAT_GAP = 2 ** -40

/**
 * A binary min-heap of member indexes (small non-negative integers) with position tracking, so an
 * arbitrary member can be removed or re-positioned in O(log n). The order is given by `exactLess`,
 * which must be a strict total order; `keys[i]` is a double approximating member i's sort value
 * (an exact integer ratio, correctly rounded: relative error ≤ 2^−53), used to decide without
 * calling `exactLess` whenever two keys are far enough apart for the rounding not to matter
 * (FLOAT_GAP = 2^−40 ≫ 2^−52). No allocation after the arrays have grown to the pool size.
 */
export class IndexHeap {
  private items: Int32Array = new Int32Array(16)
  /** Position of each member in `items`, −1 when absent. */
  private positions: Int32Array = new Int32Array(16).fill(-1)
  private length = 0
  /** Scratch frontier of the best-first walk (heap positions). */
  private frontier: Int32Array = new Int32Array(16)

  constructor(
    private readonly keys: readonly number[],
    private readonly exactLess: (a: number, b: number) => boolean,
  ) {}

  private less(a: number, b: number): boolean {
    const ka = this.keys[a] as number
    const d = ka - (this.keys[b] as number)
    const gap = FLOAT_GAP * (ka < 0 ? -ka : ka) + FLOAT_GAP
    if (d > gap) return false
    if (d < -gap) return true
    return this.exactLess(a, b)
  }

  get size(): number {
    return this.length
  }

  has(key: number): boolean {
    return key < this.positions.length && (this.positions[key] as number) >= 0
  }

  peek(): number {
    return this.length === 0 ? -1 : (this.items[0] as number)
  }

  /** The key at heap position `i` (0 ≤ i < size). */
  at(i: number): number {
    return this.items[i] as number
  }

  /** A copy sharing nothing with this heap, ordered by the copy's own keys and comparison. */
  cloneWith(keys: readonly number[], exactLess: (a: number, b: number) => boolean): IndexHeap {
    const h = new IndexHeap(keys, exactLess)
    h.items = this.items.slice()
    h.positions = this.positions.slice()
    h.length = this.length
    h.frontier = new Int32Array(this.frontier.length)
    h.frontierKeys = new Float64Array(this.frontierKeys.length)
    return h
  }

  private ensureKey(key: number): void {
    if (key < this.positions.length) return
    let n = this.positions.length
    while (n <= key) n *= 2
    const positions = new Int32Array(n).fill(-1)
    positions.set(this.positions)
    this.positions = positions
  }

  private ensureItems(n: number): void {
    if (n <= this.items.length) return
    let size = this.items.length
    while (size < n) size *= 2
    const items = new Int32Array(size)
    items.set(this.items.subarray(0, this.length))
    this.items = items
  }

  /** Replaces the content with `keys` in O(n). */
  rebuild(keys: readonly number[]): void {
    for (let i = 0; i < this.length; i++) this.positions[this.items[i] as number] = -1
    this.length = 0
    this.ensureItems(keys.length)
    for (const key of keys) {
      this.ensureKey(key)
      this.positions[key] = this.length
      this.items[this.length++] = key
    }
    for (let i = (this.length >> 1) - 1; i >= 0; i--) this.down(i)
  }

  push(key: number): void {
    this.ensureKey(key)
    this.ensureItems(this.length + 1)
    this.positions[key] = this.length
    this.items[this.length++] = key
    this.up(this.length - 1)
  }

  /** Restores the order after `key`'s value changed (it must be in the heap). */
  update(key: number): void {
    const i = this.positions[key] as number
    this.down(i)
    this.up(this.positions[key] as number)
  }

  pop(): number {
    if (this.length === 0) return -1
    const top = this.items[0] as number
    this.remove(top)
    return top
  }

  remove(key: number): boolean {
    if (!this.has(key)) return false
    const i = this.positions[key] as number
    const last = this.items[--this.length] as number
    this.positions[key] = -1
    if (i < this.length) {
      this.items[i] = last
      this.positions[last] = i
      this.down(i)
      this.up(i)
    }
    return true
  }

  /**
   * Visits keys in heap order (smallest first) without modifying the heap, until `visit` returns
   * false. Cost O(m log m) for m visited keys: a best-first walk of the heap tree over a reused
   * scratch frontier of heap positions and their keys (no allocation once it has grown). The
   * visited entry is replaced by its first child (one sift) and the second child is pushed.
   */
  walk(visit: (key: number) => boolean): void {
    if (this.length === 0) return
    this.growFrontier(2)
    let size = 1
    this.frontier[0] = 0
    this.frontierKeys[0] = this.keys[this.items[0] as number] as number
    while (size > 0) {
      const top = this.frontier[0] as number
      if (!visit(this.items[top] as number)) return
      const l = 2 * top + 1
      if (l < this.length) {
        this.frontier[0] = l
        this.frontierKeys[0] = this.keys[this.items[l] as number] as number
      } else {
        size--
        this.frontier[0] = this.frontier[size] as number
        this.frontierKeys[0] = this.frontierKeys[size] as number
      }
      if (size > 1) this.siftFrontierDown(size)
      if (l + 1 < this.length) {
        this.growFrontier(size + 1)
        this.frontier[size] = l + 1
        this.frontierKeys[size] = this.keys[this.items[l + 1] as number] as number
        this.siftFrontierUp(size)
        size++
      }
    }
  }

  private frontierKeys: Float64Array = new Float64Array(16)

  private growFrontier(n: number): void {
    if (n <= this.frontier.length) return
    const f = new Int32Array(this.frontier.length * 2)
    f.set(this.frontier)
    this.frontier = f
    const k = new Float64Array(this.frontierKeys.length * 2)
    k.set(this.frontierKeys)
    this.frontierKeys = k
  }

  /** Frontier order: by key, exactly when the keys are close. */
  private frontierLess(a: number, b: number): boolean {
    const ka = this.frontierKeys[a] as number
    const d = ka - (this.frontierKeys[b] as number)
    const gap = FLOAT_GAP * (ka < 0 ? -ka : ka) + FLOAT_GAP
    if (d > gap) return false
    if (d < -gap) return true
    return this.exactLess(
      this.items[this.frontier[a] as number] as number,
      this.items[this.frontier[b] as number] as number,
    )
  }

  private swapFrontier(a: number, b: number): void {
    const f = this.frontier
    const k = this.frontierKeys
    const t = f[a] as number
    f[a] = f[b] as number
    f[b] = t
    const u = k[a] as number
    k[a] = k[b] as number
    k[b] = u
  }

  private siftFrontierUp(i: number): void {
    let j = i
    while (j > 0) {
      const p = (j - 1) >> 1
      if (!this.frontierLess(j, p)) return
      this.swapFrontier(j, p)
      j = p
    }
  }

  private siftFrontierDown(size: number): void {
    let j = 0
    for (;;) {
      const l = 2 * j + 1
      const r = l + 1
      let m = j
      if (l < size && this.frontierLess(l, m)) m = l
      if (r < size && this.frontierLess(r, m)) m = r
      if (m === j) return
      this.swapFrontier(j, m)
      j = m
    }
  }

  private up(i: number): void {
    const items = this.items
    const key = items[i] as number
    let j = i
    while (j > 0) {
      const parent = (j - 1) >> 1
      const pk = items[parent] as number
      if (!this.less(key, pk)) break
      items[j] = pk
      this.positions[pk] = j
      j = parent
    }
    items[j] = key
    this.positions[key] = j
  }

  private down(i: number): void {
    const items = this.items
    const n = this.length
    const key = items[i] as number
    let j = i
    for (;;) {
      const l = 2 * j + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      if (r < n && this.less(items[r] as number, items[l] as number)) c = r
      const ck = items[c] as number
      if (!this.less(ck, key)) break
      items[j] = ck
      this.positions[ck] = j
      j = c
    }
    items[j] = key
    this.positions[key] = j
  }
}

/** How many of a `RankedHeap`'s smallest keys it keeps in sorted order (the recorded 10 and slack). */
export const RANKED_PREFIX = 16

/**
 * An `IndexHeap` whose RANKED_PREFIX smallest keys are kept apart, in sorted order: the router's
 * candidate order, so a decision reads its top 10 candidates as they stand instead of walking the
 * heap (the incremental top-10). Invariant: the prefix holds min(RANKED_PREFIX, size) keys, sorted,
 * each smaller than every key of the heap behind it (`rest`). Same order and cost class as
 * `IndexHeap` (O(RANKED_PREFIX + log n) per change), no allocation once the arrays have grown.
 */
export class RankedHeap {
  private prefix: Int32Array = new Int32Array(RANKED_PREFIX)
  private prefixLength = 0
  /** 1 for the keys in `prefix`. */
  private inPrefix: Uint8Array = new Uint8Array(16)
  private rest: IndexHeap

  constructor(
    private readonly keys: readonly number[],
    private readonly exactLess: (a: number, b: number) => boolean,
  ) {
    this.rest = new IndexHeap(keys, exactLess)
  }

  private less(a: number, b: number): boolean {
    const ka = this.keys[a] as number
    const d = ka - (this.keys[b] as number)
    const gap = FLOAT_GAP * (ka < 0 ? -ka : ka) + FLOAT_GAP
    if (d > gap) return false
    if (d < -gap) return true
    return this.exactLess(a, b)
  }

  get size(): number {
    return this.prefixLength + this.rest.size
  }

  /** How many keys are kept in sorted order (min(RANKED_PREFIX, size)). */
  get sortedSize(): number {
    return this.prefixLength
  }

  /** The k-th smallest key, for k < sortedSize. */
  sortedAt(k: number): number {
    return this.prefix[k] as number
  }

  has(key: number): boolean {
    return (key < this.inPrefix.length && this.inPrefix[key] === 1) || this.rest.has(key)
  }

  peek(): number {
    return this.prefixLength === 0 ? -1 : (this.prefix[0] as number)
  }

  cloneWith(keys: readonly number[], exactLess: (a: number, b: number) => boolean): RankedHeap {
    const h = new RankedHeap(keys, exactLess)
    h.prefix = this.prefix.slice()
    h.prefixLength = this.prefixLength
    h.inPrefix = this.inPrefix.slice()
    h.rest = this.rest.cloneWith(keys, exactLess)
    return h
  }

  private mark(key: number, v: 0 | 1): void {
    if (key >= this.inPrefix.length) {
      let n = this.inPrefix.length
      while (n <= key) n *= 2
      const grown = new Uint8Array(n)
      grown.set(this.inPrefix)
      this.inPrefix = grown
    }
    this.inPrefix[key] = v
  }

  /** Replaces the content with `keys` in O(n + RANKED_PREFIX log n). */
  rebuild(keys: readonly number[]): void {
    for (let k = 0; k < this.prefixLength; k++) this.mark(this.prefix[k] as number, 0)
    this.prefixLength = 0
    this.rest.rebuild(keys)
    this.refill()
  }

  /** Moves the smallest keys of `rest` to the end of the prefix until it is full (or rest empty). */
  private refill(): void {
    while (this.prefixLength < RANKED_PREFIX && this.rest.size > 0) {
      const key = this.rest.pop()
      this.prefix[this.prefixLength++] = key
      this.mark(key, 1)
    }
  }

  push(key: number): void {
    const n = this.prefixLength
    if (n === RANKED_PREFIX && !this.less(key, this.prefix[n - 1] as number)) {
      this.rest.push(key)
      return
    }
    // Insert into the sorted prefix; a full prefix hands its largest key to `rest`.
    let j = n
    if (n === RANKED_PREFIX) {
      const last = this.prefix[n - 1] as number
      this.mark(last, 0)
      this.rest.push(last)
      j = n - 1
    } else this.prefixLength++
    const prefix = this.prefix
    while (j > 0 && this.less(key, prefix[j - 1] as number)) {
      prefix[j] = prefix[j - 1] as number
      j--
    }
    prefix[j] = key
    this.mark(key, 1)
  }

  /** Restores the order after `key`'s value changed (it must be in the heap). */
  update(key: number): void {
    this.remove(key)
    this.push(key)
  }

  pop(): number {
    const top = this.peek()
    if (top >= 0) this.remove(top)
    return top
  }

  remove(key: number): boolean {
    if (key < this.inPrefix.length && this.inPrefix[key] === 1) {
      const prefix = this.prefix
      const n = this.prefixLength - 1
      let j = 0
      while (prefix[j] !== key) j++
      // A plain loop: copyWithin's call costs more than moving at most RANKED_PREFIX entries.
      for (; j < n; j++) prefix[j] = prefix[j + 1] as number
      this.prefixLength = n
      this.inPrefix[key] = 0
      if (this.rest.size > 0) {
        const next = this.rest.pop()
        prefix[n] = next
        this.prefixLength = n + 1
        // mark, not a plain store: `next` may lie past the end of `inPrefix` (it never was in the
        // prefix), and a typed array drops such a write silently.
        this.mark(next, 1)
      }
      return true
    }
    return this.rest.remove(key)
  }

  /** Visits keys in order (smallest first) until `visit` returns false: the prefix, then a walk of `rest`. */
  walk(visit: (key: number) => boolean): void {
    for (let k = 0; k < this.prefixLength; k++) if (!visit(this.prefix[k] as number)) return
    if (this.prefixLength === RANKED_PREFIX) this.rest.walk(visit)
  }
}
