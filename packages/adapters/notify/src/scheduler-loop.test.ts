import { describe, expect, it } from 'vitest'
import { runScheduler } from './scheduler-loop.js'

describe('runScheduler', () => {
  it('ticks until aborted and never after', async () => {
    const controller = new AbortController()
    let ticks = 0
    await runScheduler({
      intervalMs: 1,
      signal: controller.signal,
      tick: async () => {
        ticks++
        if (ticks === 3) controller.abort()
      },
    })
    expect(ticks).toBe(3)
  })

  it('reports a failing tick and keeps going', async () => {
    const controller = new AbortController()
    const errors: unknown[] = []
    let ticks = 0
    await runScheduler({
      intervalMs: 1,
      signal: controller.signal,
      onError: (e) => errors.push(e),
      tick: async () => {
        ticks++
        if (ticks < 3) throw new Error(`tick ${ticks}`)
        controller.abort()
      },
    })
    expect(ticks).toBe(3)
    expect(errors.map((e) => (e as Error).message)).toEqual(['tick 1', 'tick 2'])
  })

  it('stops waiting at once when aborted during the interval', async () => {
    const controller = new AbortController()
    let ticks = 0
    const running = runScheduler({
      intervalMs: 3_600_000,
      signal: controller.signal,
      tick: async () => {
        ticks++
      },
    })
    await new Promise((r) => setImmediate(r))
    controller.abort()
    await running
    expect(ticks).toBe(1)
  })

  it('does not tick when the signal is already aborted', async () => {
    let ticks = 0
    await runScheduler({
      intervalMs: 1,
      signal: AbortSignal.abort(),
      tick: async () => {
        ticks++
      },
    })
    expect(ticks).toBe(0)
  })
})
