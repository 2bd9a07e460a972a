import { createHmac } from 'node:crypto'
import { type Instant, manualClock, type PracticeId, type ReferralId } from '@referrals/core'
import { describe, expect, it } from 'vitest'
import {
  createDecisionLinks,
  inMemoryUsedLinks,
  type LinkOutcome,
  linkResultStatus,
  renderLinkResultPage,
} from './decision-links.js'

const SECRET = 'decision-link-secret-0123456789abcdef'
const claims = {
  referralId: 'r-1' as ReferralId,
  practiceId: 'spec-a' as PracticeId,
  action: 'accept' as const,
  deliveryNo: 2,
}
const setup = () => {
  const clock = manualClock('2026-03-02T08:00:00.000Z' as Instant)
  const links = createDecisionLinks({ secret: SECRET, clock, usedStore: inMemoryUsedLinks() })
  return { clock, links }
}
const resign = (body: string) =>
  `v1.${body}.${createHmac('sha256', SECRET).update(`v1.${body}`).digest('base64url')}`

describe('decision links', () => {
  it('verifies a fresh link once and returns its claims', async () => {
    const { links } = setup()
    const token = links.sign(claims)
    expect(token).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/)
    const result = await links.verify(token)
    expect(result).toMatchObject({
      ok: true,
      claims: { ...claims, expiresAtMs: Date.parse('2026-03-02T20:00:00.000Z') },
    })
  })

  it('is single use, also across instances sharing the used-link store', async () => {
    const clock = manualClock('2026-03-02T08:00:00.000Z' as Instant)
    const usedStore = inMemoryUsedLinks()
    const a = createDecisionLinks({ secret: SECRET, clock, usedStore })
    const b = createDecisionLinks({ secret: SECRET, clock, usedStore })
    const token = a.sign(claims)
    expect(a.check(token).ok).toBe(true)
    expect(a.check(token).ok).toBe(true)
    const results = await Promise.all([a.verify(token), b.verify(token)])
    expect(results.filter((r) => r.ok)).toHaveLength(1)
    expect(results.filter((r) => !r.ok)).toEqual([{ ok: false, reason: 'used' }])
    expect(await a.verify(token)).toEqual({ ok: false, reason: 'used' })
  })

  it('gives every link its own nonce', async () => {
    const { links } = setup()
    const t1 = links.sign(claims)
    const t2 = links.sign(claims)
    expect(t1).not.toBe(t2)
    expect((await links.verify(t1)).ok).toBe(true)
    expect((await links.verify(t2)).ok).toBe(true)
  })

  it('expires after 12 hours', async () => {
    const { clock, links } = setup()
    const token = links.sign(claims)
    clock.advance(12 * 3_600_000 - 1)
    expect(links.check(token).ok).toBe(true)
    clock.advance(1)
    expect(await links.verify(token)).toEqual({ ok: false, reason: 'expired' })
  })

  it('rejects a tampered link (claims changed, signature changed, other secret)', async () => {
    const { clock, links } = setup()
    const token = links.sign(claims)
    const [, body, sig] = token.split('.')
    const decoded = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8'))
    const forged = Buffer.from(JSON.stringify({ ...decoded, a: 'decline' })).toString('base64url')
    expect(await links.verify(`v1.${forged}.${sig}`)).toEqual({ ok: false, reason: 'tampered' })
    // The first character carries six signature bits (the last one also carries padding bits).
    const flipped = `${sig?.startsWith('A') ? 'B' : 'A'}${(sig ?? '').slice(1)}`
    expect(await links.verify(`v1.${body}.${flipped}`)).toEqual({ ok: false, reason: 'tampered' })
    const other = createDecisionLinks({
      secret: 'another-secret-0123456789abcdef-xyz',
      clock,
      usedStore: inMemoryUsedLinks(),
    })
    expect(await other.verify(token)).toEqual({ ok: false, reason: 'tampered' })
    // The tampered attempts did not spend the genuine link.
    expect((await links.verify(token)).ok).toBe(true)
  })

  it('rejects malformed links', async () => {
    const { links } = setup()
    for (const bad of ['', 'v1', 'v1..', 'v2.abc.def', 'v1.a b.c', 'x'.repeat(5000), 'v1.abc.def.ghi']) {
      expect(await links.verify(bad)).toEqual({ ok: false, reason: 'malformed' })
    }
    // Correctly signed but not a claims object.
    expect(await links.verify(resign(Buffer.from('[1,2]').toString('base64url')))).toEqual({
      ok: false,
      reason: 'malformed',
    })
    expect(await links.verify(resign(Buffer.from('{"r":"r-1"}').toString('base64url')))).toEqual({
      ok: false,
      reason: 'malformed',
    })
  })

  it('refuses a short secret', () => {
    expect(() =>
      createDecisionLinks({
        secret: 'short',
        clock: manualClock('2026-03-02T08:00:00.000Z' as Instant),
        usedStore: inMemoryUsedLinks(),
      }),
    ).toThrow('at least 32 bytes')
  })

  it('renders a small result page per outcome with no detail', () => {
    const outcomes: readonly LinkOutcome[] = [
      'accepted',
      'declined',
      'stale',
      'expired',
      'used',
      'tampered',
      'malformed',
    ]
    for (const outcome of outcomes) {
      const html = renderLinkResultPage(outcome)
      expect(html).toMatch(/^<!doctype html>/)
      expect(html).not.toMatch(/error|stack|undefined|r-1/i)
    }
    expect(renderLinkResultPage('expired')).toContain('This link has expired.')
    expect(renderLinkResultPage('used')).toContain('already been used')
    expect([linkResultStatus('accepted'), linkResultStatus('used'), linkResultStatus('tampered')]).toEqual([
      200, 410, 400,
    ])
  })
})
