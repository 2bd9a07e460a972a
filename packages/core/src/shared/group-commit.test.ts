import { describe, expect, it } from 'vitest'
import { groupCommit } from './group-commit.js'

interface Item {
  readonly key: string
  readonly value: number
}

/** A write that records each batch and waits for the test to finish it. */
const controlled = (fail?: (item: Item) => boolean) => {
  const batches: Item[][] = []
  const pending: (() => void)[] = []
  const gc = groupCommit<Item, string>({
    keyOf: (item) => item.key,
    maxBatch: 4,
    write: async (items) => {
      batches.push([...items])
      await new Promise<void>((resolve) => pending.push(resolve))
      if (fail !== undefined && items.some(fail)) throw new Error('bad item in batch')
      return items.map((i) => `${i.key}=${i.value}`)
    },
  })
  /** Lets the oldest unfinished write complete, then lets the queue move on. */
  const finishOne = async () => {
    const next = pending.shift()
    if (next === undefined) throw new Error('no write in flight')
    next()
    for (let i = 0; i < 5; i++) await Promise.resolve()
  }
  const settle = async () => {
    for (let guard = 0; guard < 100 && (pending.length > 0 || guard < 3); guard++) {
      if (pending.length > 0) await finishOne()
      else await new Promise((resolve) => setImmediate(resolve))
    }
  }
  return { gc, batches, pending, finishOne, settle }
}

describe('groupCommit', () => {
  it('writes a lone item at once, in a batch of its own', async () => {
    const { gc, batches, settle } = controlled()
    const answer = gc.submit({ key: 'a', value: 1 })
    expect(batches).toEqual([[{ key: 'a', value: 1 }]])
    await settle()
    expect(await answer).toBe('a=1')
    expect(gc.writes()).toBe(1)
  })

  it('queues items that arrive during a write into the next one, each caller getting its own result', async () => {
    const { gc, batches, settle } = controlled()
    const first = gc.submit({ key: 'a', value: 1 })
    const rest = [gc.submit({ key: 'b', value: 2 }), gc.submit({ key: 'c', value: 3 })]
    expect(batches).toHaveLength(1)
    await settle()
    expect(batches.map((b) => b.map((i) => i.key))).toEqual([['a'], ['b', 'c']])
    expect(await first).toBe('a=1')
    expect(await Promise.all(rest)).toEqual(['b=2', 'c=3'])
    expect(gc.writes()).toBe(2)
  })

  it('never puts two items with one key in a batch: the later waits for the next, in order', async () => {
    const { gc, batches, settle } = controlled()
    const answers = [
      gc.submit({ key: 'x', value: 0 }),
      gc.submit({ key: 'k', value: 1 }),
      gc.submit({ key: 'k', value: 2 }),
      gc.submit({ key: 'm', value: 3 }),
      gc.submit({ key: 'k', value: 4 }),
    ]
    await settle()
    expect(batches.map((b) => b.map((i) => `${i.key}${i.value}`))).toEqual([
      ['x0'],
      ['k1', 'm3'],
      ['k2'],
      ['k4'],
    ])
    expect(await Promise.all(answers)).toEqual(['x=0', 'k=1', 'k=2', 'm=3', 'k=4'])
  })

  it('writes at most maxBatch items at once', async () => {
    const { gc, batches, settle } = controlled()
    const answers = Array.from({ length: 10 }, (_, i) => gc.submit({ key: `k${i}`, value: i }))
    await settle()
    expect(batches.map((b) => b.length)).toEqual([1, 4, 4, 1])
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}=${i}`))
  })

  it('fails only the bad item of a failed batch: the others are written again one by one', async () => {
    const { gc, batches, settle } = controlled((item) => item.value < 0)
    const lone = gc.submit({ key: 'a', value: 1 })
    const good1 = gc.submit({ key: 'b', value: 2 })
    const bad = gc.submit({ key: 'c', value: -1 })
    const good2 = gc.submit({ key: 'd', value: 3 })
    const outcomes = Promise.allSettled([lone, good1, bad, good2])
    await settle()
    const [r0, r1, r2, r3] = await outcomes
    expect(r0).toEqual({ status: 'fulfilled', value: 'a=1' })
    expect(r1).toEqual({ status: 'fulfilled', value: 'b=2' })
    expect(r2).toMatchObject({ status: 'rejected', reason: { message: 'bad item in batch' } })
    expect(r3).toEqual({ status: 'fulfilled', value: 'd=3' })
    expect(batches.map((b) => b.map((i) => i.key))).toEqual([['a'], ['b', 'c', 'd'], ['b'], ['c'], ['d']])
  })

  it('rejects a write that answers the wrong number of results, and keeps serving', async () => {
    let broken = true
    const gc = groupCommit<Item, number>({
      keyOf: (item) => item.key,
      write: async (items) => (broken ? [] : items.map((i) => i.value)),
    })
    await expect(gc.submit({ key: 'a', value: 1 })).rejects.toThrow('0 results for 1 items')
    broken = false
    expect(await gc.submit({ key: 'a', value: 2 })).toBe(2)
  })

  it('refuses a maxBatch that is not a positive integer', () => {
    for (const maxBatch of [0, -1, 1.5, Number.NaN])
      expect(() => groupCommit({ keyOf: String, write: async () => [], maxBatch })).toThrow(TypeError)
  })
})
