import { describe, expect, it } from 'vitest'
import { serializedRefresh } from './catch-up.js'

describe('serializedRefresh', () => {
  it('never answers a caller with a catch-up that started before its call', async () => {
    let applied = 0
    let writes = 0
    const gates: (() => void)[] = []
    const refresh = serializedRefresh(async () => {
      const seen = writes // what the store holds when this catch-up reads it
      await new Promise<void>((resolve) => gates.push(resolve))
      applied = seen
    })
    const first = refresh()
    writes = 1 // a write lands while the first catch-up is running…
    const second = refresh() // …so this caller must wait for a catch-up that sees it
    const third = refresh()
    gates.shift()?.()
    await first
    expect(applied).toBe(0)
    await Promise.resolve()
    await new Promise((r) => setImmediate(r))
    gates.shift()?.()
    await second
    await third
    expect(applied).toBe(1)
    expect(gates).toHaveLength(0) // second and third shared one catch-up
  })

  it('lets the next call start afresh after a failure', async () => {
    let fail = true
    const refresh = serializedRefresh(async () => {
      if (fail) throw new Error('store down')
    })
    await expect(refresh()).rejects.toThrow('store down')
    fail = false
    await expect(refresh()).resolves.toBeUndefined()
  })
})
