import { describe, expect, it } from 'vitest'
import { closeGracefully } from './app.js'
import { buildTestApp } from './testing.js'
import { demoRoutes, demoState, slowEntered } from './testing-demo.js'

describe('closeGracefully', () => {
  it('finishes in-flight requests, refuses new connections, then closes resources and the embedded database', async () => {
    const state = demoState()
    const { app, token } = await buildTestApp({ registerRoutes: demoRoutes(state) })
    const address = await app.listen({ port: 0, host: '127.0.0.1' })
    let open: () => void = () => undefined
    state.gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const headers = {
      authorization: `Bearer ${await token({ userId: 'u-1' })}`,
      'content-type': 'application/json',
    }
    const inFlight = fetch(`${address}/demo/slow`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ n: 3 }),
    })
    await slowEntered(state)

    const order: string[] = []
    const closing = closeGracefully(app, {
      resources: [{ close: async () => void order.push('store') }],
      stopEmbedded: async () => void order.push('embedded'),
      timeoutMs: 5000,
    })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(order).toEqual([])
    await expect(fetch(`${address}/health`, { headers: { connection: 'close' } })).rejects.toThrow()

    open()
    const response = await inFlight
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ n: 3 })
    expect(await closing).toBe('drained')
    expect(order).toEqual(['store', 'embedded'])
    expect(state.writes).toBe(1)
  })
})
