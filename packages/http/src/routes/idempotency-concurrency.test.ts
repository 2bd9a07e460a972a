import { afterEach, describe, expect, it } from 'vitest'
import { buildRoutesTestApp, type RoutesTestApp } from './testing-routes.js'

/** Real sockets: 100 clients at once against a listening server. */
describe('Idempotency-Key under concurrency', () => {
  let current: RoutesTestApp | undefined
  afterEach(async () => {
    await current?.app.close()
    current = undefined
  })

  const listening = async () => {
    current = await buildRoutesTestApp()
    const address = await current.app.listen({ port: 0, host: '127.0.0.1' })
    const token = await current.token({ userId: 'dr-gp' })
    const post = (body: unknown, key: string) =>
      fetch(`${address}/referrals`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body: JSON.stringify(body),
      }).then(async (res) => ({
        status: res.status,
        contentType: res.headers.get('content-type') ?? '',
        replayed: res.headers.get('idempotent-replayed'),
        body: (await res.json()) as Record<string, unknown>,
      }))
    return { t: current, post }
  }

  const sent = (t: RoutesTestApp) => t.store.snapshot().filter((e) => e.type === 'ReferralSent')

  it('100 identical POST /referrals with one key create one referral; each answer is that 201 or 409 in flight', async () => {
    const { t, post } = await listening()
    const body = t.referral('r-concurrent', 'pooled')
    const responses = await Promise.all(Array.from({ length: 100 }, () => post(body, 'key-concurrent-1')))

    expect(sent(t)).toHaveLength(1)
    const created = responses.filter((r) => r.status === 201)
    const inFlight = responses.filter((r) => r.status === 409)
    expect(created.length + inFlight.length).toBe(100)
    expect(created.length).toBeGreaterThanOrEqual(1)
    const first = created[0]?.body
    expect(first).toMatchObject({ referralId: 'r-concurrent', status: 'pending' })
    for (const r of created) expect(r.body).toEqual(first)
    expect(created.filter((r) => r.replayed === null)).toHaveLength(1)
    for (const r of inFlight) {
      expect(r.contentType).toContain('application/problem+json')
      expect(r.body.code).toBe('idempotency.in_flight')
    }

    // Once settled, every retry is the replay of the one result.
    const later = await Promise.all(Array.from({ length: 20 }, () => post(body, 'key-concurrent-1')))
    for (const r of later) {
      expect(r.status).toBe(201)
      expect(r.replayed).toBe('true')
      expect(r.body).toEqual(first)
    }
    expect(sent(t)).toHaveLength(1)
  })

  it('100 concurrent sends of one referral id with different keys still create it once (the others conflict)', async () => {
    const { t, post } = await listening()
    const body = t.referral('r-race', 'pooled')
    const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => post(body, `key-race-${i}`)))
    expect(sent(t)).toHaveLength(1)
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1)
    for (const r of responses.filter((r) => r.status !== 201)) {
      expect(r.status).toBe(409)
      expect(r.contentType).toContain('application/problem+json')
    }
  })
})
