import type { Actor, Membership, PlatformRole, PracticeId, UserId } from '@referrals/core'
import { afterEach, describe, expect, it } from 'vitest'
import type { ResolveActor } from './auth.js'
import {
  authorizationOf,
  canonicalJson,
  encryptedIdempotencyStore,
  type IdempotencyStore,
  inMemoryIdempotencyStore,
  requestFingerprint,
} from './idempotency.js'
import { buildRoutesTestApp } from './routes/testing-routes.js'
import { buildTestApp, type TestApp } from './testing.js'
import { type DemoState, demoRoutes, demoState, slowEntered } from './testing-demo.js'

const item = { name: 'Crutches', quantity: 2, kind: 'box', dueAt: null }

describe('Idempotency-Key on POST', () => {
  let current: (TestApp & { state: DemoState; clock: { ms: number } }) | undefined
  afterEach(async () => {
    await current?.app.close()
    current = undefined
  })
  const setup = async () => {
    const state = demoState()
    const clock = { ms: Date.parse('2026-03-01T00:00:00.000Z') }
    const app = await buildTestApp({ registerRoutes: demoRoutes(state), now: () => new Date(clock.ms) })
    current = { ...app, state, clock }
    const headers = (key: string, userId = 'u-1') =>
      app.token({ userId }).then((token) => ({ authorization: `Bearer ${token}`, 'idempotency-key': key }))
    return { ...current, headers }
  }

  it('replays the first response (status, body, ETag, Location) for the same key and body, once executed', async () => {
    const { app, state, headers } = await setup()
    const first = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('k-1'),
      payload: item,
    })
    expect(first.statusCode).toBe(201)
    const again = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('k-1'),
      payload: { dueAt: null, kind: 'box', quantity: 2, name: 'Crutches' },
    })
    expect(again.statusCode).toBe(201)
    expect(again.body).toBe(first.body)
    expect(again.headers.etag).toBe('W/"1"')
    expect(again.headers.location).toBe('/demo/items/item-1')
    expect(again.headers['content-type']).toBe(first.headers['content-type'])
    expect(again.headers['idempotent-replayed']).toBe('true')
    expect(first.headers['idempotent-replayed']).toBeUndefined()
    expect(state.writes).toBe(1)
  })

  it('executes again without a key, or with another key', async () => {
    const { app, state, headers, token } = await setup()
    const auth = { authorization: `Bearer ${await token({ userId: 'u-1' })}` }
    await app.inject({ method: 'POST', url: '/demo/items', headers: auth, payload: item })
    await app.inject({ method: 'POST', url: '/demo/items', headers: auth, payload: item })
    await app.inject({ method: 'POST', url: '/demo/items', headers: await headers('a'), payload: item })
    await app.inject({ method: 'POST', url: '/demo/items', headers: await headers('b'), payload: item })
    expect(state.writes).toBe(4)
  })

  it('answers 422 when the key is reused with a different body, without executing', async () => {
    const { app, state, headers } = await setup()
    await app.inject({ method: 'POST', url: '/demo/items', headers: await headers('k-2'), payload: item })
    const reused = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('k-2'),
      payload: { ...item, quantity: 3 },
    })
    expect(reused.statusCode).toBe(422)
    expect(reused.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(reused.json().type).toBe('https://referrals.dev/problems/idempotency.key_reused')
    expect(state.writes).toBe(1)
  })

  it('answers 422 when the key is reused on another route', async () => {
    const { app, headers } = await setup()
    await app.inject({ method: 'POST', url: '/demo/slow', headers: await headers('k-3'), payload: { n: 1 } })
    const other = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('k-3'),
      payload: item,
    })
    expect(other.statusCode).toBe(422)
  })

  it('answers 409 while the first request with the key is in flight, then replays', async () => {
    const { app, state, headers } = await setup()
    let open: () => void = () => undefined
    state.gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const first = app.inject({
      method: 'POST',
      url: '/demo/slow',
      headers: await headers('k-4'),
      payload: { n: 7 },
    })
    await slowEntered(state)
    const concurrent = await app.inject({
      method: 'POST',
      url: '/demo/slow',
      headers: await headers('k-4'),
      payload: { n: 7 },
    })
    expect(concurrent.statusCode).toBe(409)
    expect(concurrent.json().type).toBe('https://referrals.dev/problems/idempotency.in_flight')
    open()
    expect((await first).statusCode).toBe(200)
    const after = await app.inject({
      method: 'POST',
      url: '/demo/slow',
      headers: await headers('k-4'),
      payload: { n: 7 },
    })
    expect(after.statusCode).toBe(200)
    expect(after.json()).toEqual({ n: 7 })
    expect(after.headers['idempotent-replayed']).toBe('true')
    expect(state.writes).toBe(1)
  })

  it('scopes keys per user', async () => {
    const { app, state, headers } = await setup()
    await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('same', 'u-1'),
      payload: item,
    })
    const other = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('same', 'u-2'),
      payload: { ...item, quantity: 9 },
    })
    expect(other.statusCode).toBe(201)
    expect(other.headers['idempotent-replayed']).toBeUndefined()
    expect(state.writes).toBe(2)
  })

  it('forgets a key after 24 hours', async () => {
    const { app, state, headers, clock } = await setup()
    await app.inject({ method: 'POST', url: '/demo/items', headers: await headers('k-5'), payload: item })
    clock.ms += 24 * 3_600_000 - 1
    const within = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('k-5'),
      payload: item,
    })
    expect(within.headers['idempotent-replayed']).toBe('true')
    clock.ms += 2
    const after = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('k-5'),
      payload: item,
    })
    expect(after.headers['idempotent-replayed']).toBeUndefined()
    expect(state.writes).toBe(2)
  })

  it('releases the key after a server error so the client can retry, and stores client errors', async () => {
    const { app, headers } = await setup()
    const failed = await app.inject({
      method: 'POST',
      url: '/demo/fail',
      headers: await headers('k-6'),
      payload: { note: 'n' },
    })
    expect(failed.statusCode).toBe(500)
    const retried = await app.inject({
      method: 'POST',
      url: '/demo/fail',
      headers: await headers('k-6'),
      payload: { note: 'n' },
    })
    expect(retried.statusCode).toBe(500)
    expect(retried.headers['idempotent-replayed']).toBeUndefined()

    const refused = await app.inject({
      method: 'POST',
      url: '/demo/domain-error',
      headers: await headers('k-7'),
      payload: { code: 'demo.rule' },
    })
    expect(refused.statusCode).toBe(422)
    const replayed = await app.inject({
      method: 'POST',
      url: '/demo/domain-error',
      headers: await headers('k-7'),
      payload: { code: 'demo.rule' },
    })
    expect(replayed.statusCode).toBe(422)
    expect(replayed.headers['idempotent-replayed']).toBe('true')
    expect(replayed.headers['content-type']).toMatch(/^application\/problem\+json/)
  })

  it('rejects malformed keys with 400 and does not claim keys for undecodable bodies', async () => {
    const { app, state, headers } = await setup()
    const long = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('x'.repeat(300)),
      payload: item,
    })
    expect(long.statusCode).toBe(400)
    const bad = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('k-8'),
      payload: { name: 1 },
    })
    expect(bad.statusCode).toBe(400)
    const good = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: await headers('k-8'),
      payload: item,
    })
    expect(good.statusCode).toBe(201)
    expect(state.writes).toBe(1)
  })
})

describe('Idempotency-Key: authorization, uploads and hostile bodies', () => {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup()
  })

  it('does not replay to a caller whose memberships or platform roles changed (422), and replays again once restored', async () => {
    const state = demoState()
    const memberships: Membership[] = [{ practiceId: 'clinic' as PracticeId, role: 'staff' }]
    let roles: PlatformRole[] = []
    const resolveActor: ResolveActor = async (userId) => ({
      kind: 'user',
      userId,
      platformRoles: roles,
      memberships: [...memberships],
    })
    const app = await buildTestApp({ registerRoutes: demoRoutes(state), resolveActor })
    cleanups.push(() => app.app.close())
    const post = async () =>
      app.app.inject({
        method: 'POST',
        url: '/demo/items',
        headers: {
          authorization: `Bearer ${await app.token({ userId: 'u-1' })}`,
          'idempotency-key': 'k-auth',
        },
        payload: item,
      })
    const first = await post()
    expect(first.statusCode).toBe(201)

    memberships.pop()
    const removed = await post()
    expect(removed.statusCode).toBe(422)
    expect(removed.json().type).toBe('https://referrals.dev/problems/idempotency.key_reused')
    expect(removed.headers['idempotent-replayed']).toBeUndefined()
    expect(removed.body).not.toContain('Crutches')

    memberships.push({ practiceId: 'clinic' as PracticeId, role: 'owner' })
    expect((await post()).statusCode).toBe(422)
    memberships.pop()
    memberships.push({ practiceId: 'clinic' as PracticeId, role: 'staff' })
    roles = ['auditor']
    expect((await post()).statusCode).toBe(422)

    roles = []
    const restored = await post()
    expect(restored.statusCode).toBe(201)
    expect(restored.headers['idempotent-replayed']).toBe('true')
    expect(restored.body).toBe(first.body)
    expect(state.writes).toBe(1)
  })

  it('refuses Idempotency-Key on a multipart upload with 400, storing nothing, while the upload works without it', async () => {
    const t = await buildRoutesTestApp()
    cleanups.push(() => t.app.close())
    await t.ok('gp', 'POST', '/referrals', t.referral('r-1'))
    const boundary = '----idempotency-test-boundary'
    const upload = (content: string, key?: string) =>
      t.call(
        'gp',
        'POST',
        '/referrals/r-1/attachments',
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.pdf"\r\n` +
            `Content-Type: application/pdf\r\n\r\n%PDF-1.7\n${content}\r\n--${boundary}--\r\n`,
        ),
        {
          'content-type': `multipart/form-data; boundary=${boundary}`,
          ...(key === undefined ? {} : { 'idempotency-key': key }),
        },
      )
    const attachments = () => t.domainEvents().filter((e) => e.type === 'AttachmentAdded')
    const first = await upload('first file', 'upload-1')
    expect(first.statusCode).toBe(400)
    expect(first.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(first.json().detail).toMatch(/multipart/)
    const second = await upload('another file', 'upload-1')
    expect(second.statusCode).toBe(400)
    expect(second.headers['idempotent-replayed']).toBeUndefined()
    expect(attachments()).toHaveLength(0)
    expect((await upload('without a key')).statusCode).toBe(201)
    expect(attachments()).toHaveLength(1)
  })

  it('answers a body with a deeply nested field normally, never 5xx, and replays it', async () => {
    const state = demoState()
    const app = await buildTestApp({ registerRoutes: demoRoutes(state) })
    cleanups.push(() => app.app.close())
    const depth = 200_000
    const payload = `{"name":"Crutches","quantity":2,"kind":"box","dueAt":null,"junk":${'['.repeat(depth)}${']'.repeat(depth)}}`
    const post = async () =>
      app.app.inject({
        method: 'POST',
        url: '/demo/items',
        headers: {
          authorization: `Bearer ${await app.token({ userId: 'u-1' })}`,
          'idempotency-key': 'k-deep',
          'content-type': 'application/json',
        },
        payload,
      })
    const first = await post()
    expect(first.statusCode).toBe(201)
    const again = await post()
    expect(again.statusCode).toBe(201)
    expect(again.headers['idempotent-replayed']).toBe('true')
    expect(state.writes).toBe(1)
  })
})

describe('inMemoryIdempotencyStore', () => {
  const now = new Date('2026-03-01T00:00:00.000Z')
  it('claims, reports in flight, mismatch, replay, and release', async () => {
    const store = inMemoryIdempotencyStore()
    expect(await store.begin('user:a', 'k', 'f1', now, 1000)).toEqual({ kind: 'started' })
    expect(await store.begin('user:a', 'k', 'f1', now, 1000)).toEqual({ kind: 'in_flight' })
    expect(await store.begin('user:a', 'k', 'f2', now, 1000)).toEqual({ kind: 'mismatch' })
    expect(await store.begin('user:b', 'k', 'f2', now, 1000)).toEqual({ kind: 'started' })
    await store.release('user:b', 'k')
    expect(await store.begin('user:b', 'k', 'f3', now, 1000)).toEqual({ kind: 'started' })
    const response = { status: 201, headers: { etag: 'W/"1"' }, body: '{}' }
    await store.complete('user:a', 'k', response)
    await store.release('user:a', 'k')
    expect(await store.begin('user:a', 'k', 'f1', now, 1000)).toEqual({ kind: 'replay', response })
    expect(await store.begin('user:a', 'k', 'f2', new Date(now.getTime() + 1000), 1000)).toEqual({
      kind: 'started',
    })
  })
})

describe('canonicalJson', () => {
  it('sorts object keys at every level, keeps array order, and drops undefined members', () => {
    expect(canonicalJson({ b: [3, { d: 1, c: 'x' }], a: null, u: undefined })).toBe(
      '{"a":null,"b":[3,{"c":"x","d":1}]}',
    )
    expect(canonicalJson([[], {}, [[1]], 'a"b', true])).toBe('[[],{},[[1]],"a\\"b",true]')
    expect(canonicalJson([undefined])).toBe('[null]')
  })

  it('handles nesting far deeper than the call stack', () => {
    const depth = 500_000
    let deep: unknown = []
    for (let i = 1; i < depth; i++) deep = [deep]
    const text = canonicalJson({ deep })
    expect(text.length).toBe(depth * 2 + '{"deep":}'.length)
    expect(text.startsWith('{"deep":[[[')).toBe(true)
  })
})

describe('requestFingerprint', () => {
  it('ignores key order but not values, route or params', () => {
    const base = requestFingerprint('POST', '/r/:id', { id: '1' }, { a: 1, b: [1, 2] })
    expect(requestFingerprint('POST', '/r/:id', { id: '1' }, { b: [1, 2], a: 1 })).toBe(base)
    expect(requestFingerprint('POST', '/r/:id', { id: '1' }, { a: 1, b: [2, 1] })).not.toBe(base)
    expect(requestFingerprint('POST', '/r/:id', { id: '2' }, { a: 1, b: [1, 2] })).not.toBe(base)
    expect(requestFingerprint('POST', '/s/:id', { id: '1' }, { a: 1, b: [1, 2] })).not.toBe(base)
  })

  it('depends on the authorization, which ignores the order of roles and memberships', () => {
    const actor = (memberships: Membership[], platformRoles: PlatformRole[]): Actor => ({
      kind: 'user',
      userId: 'u-1' as UserId,
      platformRoles,
      memberships,
    })
    const a = { practiceId: 'a' as PracticeId, role: 'owner' as const }
    const b = { practiceId: 'b' as PracticeId, role: 'staff' as const }
    const fp = (who: Actor | null) => requestFingerprint('POST', '/r', {}, { x: 1 }, authorizationOf(who))
    const base = fp(actor([a, b], ['admin', 'auditor']))
    expect(fp(actor([b, a], ['auditor', 'admin']))).toBe(base)
    expect(fp(actor([a], ['admin', 'auditor']))).not.toBe(base)
    expect(fp(actor([a, { ...b, role: 'owner' }], ['admin', 'auditor']))).not.toBe(base)
    expect(fp(actor([a, b], ['admin']))).not.toBe(base)
    expect(fp(null)).not.toBe(base)
  })
})

describe('encryptedIdempotencyStore', () => {
  const now = new Date('2026-03-01T00:00:00.000Z')
  const response = { status: 201, headers: { location: '/r/1' }, body: '{"patient":"Jane Canary"}' }

  it('stores sealed bodies and replays the plaintext; another master key cannot open them', async () => {
    const inner = inMemoryIdempotencyStore()
    const sealedInner: { body?: string } = {}
    const spying: IdempotencyStore = {
      begin: inner.begin,
      release: inner.release,
      complete: async (s, k, r) => {
        sealedInner.body = r.body
        await inner.complete(s, k, r)
      },
    }
    const store = encryptedIdempotencyStore(spying, Buffer.alloc(32, 1))
    await store.begin('user:a', 'k', 'f', now, 1000)
    await store.complete('user:a', 'k', response)
    expect(sealedInner.body).toMatch(/^aes256gcm:/)
    expect(sealedInner.body).not.toContain('Jane')
    expect(await store.begin('user:a', 'k', 'f', now, 1000)).toEqual({ kind: 'replay', response })
    const otherKey = encryptedIdempotencyStore(inner, Buffer.alloc(32, 2))
    expect(await otherKey.begin('user:a', 'k', 'f', now, 1000)).toEqual({ kind: 'in_flight' })
  })
})
