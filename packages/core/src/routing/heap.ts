/**
 * A binary min-heap of string keys with position tracking, so an arbitrary key can be removed
 * or re-positioned in O(log n). The order is given by `less`, which must be a strict total order.
 */
export class IndexedHeap {
  private readonly items: string[] = []
  private readonly positions = new Map<string, number>()

  constructor(private readonly less: (a: string, b: string) => boolean) {}

  get size(): number {
    return this.items.length
  }

  has(key: string): boolean {
    return this.positions.has(key)
  }

  peek(): string | undefined {
    return this.items[0]
  }

  /** Replaces the content with `keys` in O(n). */
  rebuild(keys: readonly string[]): void {
    this.items.length = 0
    this.positions.clear()
    for (const key of keys) {
      this.positions.set(key, this.items.length)
      this.items.push(key)
    }
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.down(i)
  }

  push(key: string): void {
    this.positions.set(key, this.items.length)
    this.items.push(key)
    this.up(this.items.length - 1)
  }

  pop(): string | undefined {
    const top = this.items[0]
    if (top !== undefined) this.remove(top)
    return top
  }

  remove(key: string): boolean {
    const i = this.positions.get(key)
    if (i === undefined) return false
    const last = this.items.pop() as string
    this.positions.delete(key)
    if (i < this.items.length) {
      this.items[i] = last
      this.positions.set(last, i)
      this.down(i)
      this.up(i)
    }
    return true
  }

  /**
   * Visits keys in heap order (smallest first) without modifying the heap, until `visit` returns
   * false. Cost O(m log m) for m visited keys: a best-first walk of the heap tree.
   */
  walk(visit: (key: string) => boolean): void {
    if (this.items.length === 0) return
    const frontier: number[] = [0]
    const lessAt = (a: number, b: number) => this.less(this.items[a] as string, this.items[b] as string)
    while (frontier.length > 0) {
      const top = frontier[0] as number
      const last = frontier.pop() as number
      if (frontier.length > 0) {
        frontier[0] = last
        siftDown(frontier, 0, lessAt)
      }
      if (!visit(this.items[top] as string)) return
      for (const child of [2 * top + 1, 2 * top + 2]) {
        if (child < this.items.length) {
          frontier.push(child)
          siftUp(frontier, frontier.length - 1, lessAt)
        }
      }
    }
  }

  private up(i: number): void {
    let j = i
    while (j > 0) {
      const parent = (j - 1) >> 1
      if (!this.less(this.items[j] as string, this.items[parent] as string)) break
      this.swap(j, parent)
      j = parent
    }
  }

  private down(i: number): void {
    let j = i
    for (;;) {
      const l = 2 * j + 1
      const r = l + 1
      let m = j
      if (l < this.items.length && this.less(this.items[l] as string, this.items[m] as string)) m = l
      if (r < this.items.length && this.less(this.items[r] as string, this.items[m] as string)) m = r
      if (m === j) return
      this.swap(j, m)
      j = m
    }
  }

  private swap(a: number, b: number): void {
    const x = this.items[a] as string
    const y = this.items[b] as string
    this.items[a] = y
    this.items[b] = x
    this.positions.set(y, a)
    this.positions.set(x, b)
  }
}

const siftUp = (xs: number[], i: number, less: (a: number, b: number) => boolean): void => {
  let j = i
  while (j > 0) {
    const p = (j - 1) >> 1
    if (!less(xs[j] as number, xs[p] as number)) return
    const t = xs[j] as number
    xs[j] = xs[p] as number
    xs[p] = t
    j = p
  }
}

const siftDown = (xs: number[], i: number, less: (a: number, b: number) => boolean): void => {
  let j = i
  for (;;) {
    const l = 2 * j + 1
    const r = l + 1
    let m = j
    if (l < xs.length && less(xs[l] as number, xs[m] as number)) m = l
    if (r < xs.length && less(xs[r] as number, xs[m] as number)) m = r
    if (m === j) return
    const t = xs[j] as number
    xs[j] = xs[m] as number
    xs[m] = t
    j = m
  }
}
