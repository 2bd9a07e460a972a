/**
 * A binary min-heap of member indexes (small non-negative integers) with position tracking, so an
 * arbitrary member can be removed or re-positioned in O(log n). The order is given by `less`,
 * which must be a strict total order. No allocation after the arrays have grown to the pool size.
 */
export class IndexHeap {
  private items: Int32Array = new Int32Array(16)
  /** Position of each member in `items`, −1 when absent. */
  private positions: Int32Array = new Int32Array(16).fill(-1)
  private length = 0
  /** Scratch frontier of the best-first walk (heap positions). */
  private frontier: Int32Array = new Int32Array(16)

  constructor(private readonly less: (a: number, b: number) => boolean) {}

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

  /** A copy sharing nothing with this heap; `less` is the copy's own order. */
  cloneWith(less: (a: number, b: number) => boolean): IndexHeap {
    const h = new IndexHeap(less)
    h.items = this.items.slice()
    h.positions = this.positions.slice()
    h.length = this.length
    h.frontier = new Int32Array(this.frontier.length)
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
   * scratch frontier (no allocation once it has grown).
   */
  walk(visit: (key: number) => boolean): void {
    if (this.length === 0) return
    let f = this.frontier
    let size = 1
    f[0] = 0
    while (size > 0) {
      const top = f[0] as number
      size--
      if (size > 0) {
        f[0] = f[size] as number
        this.siftFrontierDown(f, size)
      }
      if (!visit(this.items[top] as number)) return
      const l = 2 * top + 1
      for (let child = l; child <= l + 1 && child < this.length; child++) {
        if (size === f.length) {
          const g = new Int32Array(f.length * 2)
          g.set(f)
          this.frontier = f = g
        }
        f[size] = child
        this.siftFrontierUp(f, size)
        size++
      }
    }
  }

  private lessAt(a: number, b: number): boolean {
    return this.less(this.items[a] as number, this.items[b] as number)
  }

  private siftFrontierUp(f: Int32Array, i: number): void {
    let j = i
    while (j > 0) {
      const p = (j - 1) >> 1
      if (!this.lessAt(f[j] as number, f[p] as number)) return
      const t = f[j] as number
      f[j] = f[p] as number
      f[p] = t
      j = p
    }
  }

  private siftFrontierDown(f: Int32Array, size: number): void {
    let j = 0
    for (;;) {
      const l = 2 * j + 1
      const r = l + 1
      let m = j
      if (l < size && this.lessAt(f[l] as number, f[m] as number)) m = l
      if (r < size && this.lessAt(f[r] as number, f[m] as number)) m = r
      if (m === j) return
      const t = f[j] as number
      f[j] = f[m] as number
      f[m] = t
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
