import { afterEach, describe, expect, it } from 'vitest'
import { parseIfMatch, weakEtag } from './etag.js'
import { buildTestApp, type TestApp } from './testing.js'
import { demoRoutes, demoState } from './testing-demo.js'

describe('parseIfMatch', () => {
  it('reads *, weak and strong tags, and lists', () => {
    expect(parseIfMatch(undefined)).toEqual({ kind: 'absent' })
    expect(parseIfMatch('*')).toEqual({ kind: 'any' })
    expect(parseIfMatch('W/"3"')).toEqual({ kind: 'versions', versions: [3] })
    expect(parseIfMatch('"3", W/"4"')).toEqual({ kind: 'versions', versions: [3, 4] })
    expect(parseIfMatch('3')).toEqual({ kind: 'invalid' })
    expect(parseIfMatch('W/"abc"')).toEqual({ kind: 'invalid' })
    expect(parseIfMatch('')).toEqual({ kind: 'invalid' })
    expect(weakEtag(12)).toBe('W/"12"')
  })
})

describe('If-Match on a mutation', () => {
  let current: TestApp | undefined
  afterEach(async () => {
    await current?.app.close()
  })

  const setup = async () => {
    const state = demoState()
    current = await buildTestApp({ registerRoutes: demoRoutes(state) })
    const auth = { authorization: `Bearer ${await current.token({ userId: 'u-1' })}` }
    const created = await current.app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: auth,
      payload: { name: 'n', quantity: 1, kind: 'box', dueAt: null },
    })
    return { app: current.app, auth, state, etag: String(created.headers.etag) }
  }

  it('applies the change when If-Match names the current version and returns the new ETag', async () => {
    const { app, auth, etag } = await setup()
    expect(etag).toBe('W/"1"')
    const res = await app.inject({
      method: 'PUT',
      url: '/demo/items/item-1/quantity',
      headers: { ...auth, 'if-match': etag },
      payload: { quantity: 5 },
    })
    expect(res.statusCode).toBe(200)
    expect(res.headers.etag).toBe('W/"2"')
    const read = await app.inject({ method: 'GET', url: '/demo/items/item-1', headers: auth })
    expect(read.headers.etag).toBe('W/"2"')
    expect(read.json().quantity).toBe(5)
  })

  it('answers 412 for a stale ETag and changes nothing', async () => {
    const { app, auth, etag, state } = await setup()
    await app.inject({
      method: 'PUT',
      url: '/demo/items/item-1/quantity',
      headers: { ...auth, 'if-match': etag },
      payload: { quantity: 5 },
    })
    const stale = await app.inject({
      method: 'PUT',
      url: '/demo/items/item-1/quantity',
      headers: { ...auth, 'if-match': etag },
      payload: { quantity: 9 },
    })
    expect(stale.statusCode).toBe(412)
    expect(stale.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(stale.json().type).toBe('https://referrals.dev/problems/precondition_failed')
    expect(stale.json().details).toEqual({ currentVersion: 2 })
    expect(stale.headers.etag).toBe('W/"2"')
    expect(state.items.get('item-1')?.quantity).toBe(5)
    expect(state.writes).toBe(2)
  })

  it('answers 428 when If-Match is required but absent, 400 when malformed', async () => {
    const { app, auth, state } = await setup()
    const absent = await app.inject({
      method: 'PUT',
      url: '/demo/items/item-1/quantity',
      headers: auth,
      payload: { quantity: 9 },
    })
    expect(absent.statusCode).toBe(428)
    expect(absent.json().type).toBe('https://referrals.dev/problems/precondition_required')
    const malformed = await app.inject({
      method: 'PUT',
      url: '/demo/items/item-1/quantity',
      headers: { ...auth, 'if-match': 'version one' },
      payload: { quantity: 9 },
    })
    expect(malformed.statusCode).toBe(400)
    expect(state.writes).toBe(1)
  })
})
