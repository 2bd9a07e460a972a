import {
  createEngine,
  createInMemoryEventStore,
  createIntakeConversions,
  createPublicIntake,
  INTAKE_FIELDS as F,
  type Instant,
  manualClock,
  type ReferralId,
  type StoredEvent,
  sequentialUuids,
  type UserId,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { DEMO, seedDemo } from '../demo.js'
import { buildTestApp } from '../testing.js'
import { tokenOf } from './public-intake-testing.js'
import { registerResourceRoutes } from './resources.js'

/**
 * Issue 15's journey end to end over HTTP, on the demo dataset: the demo clinic's owner creates a
 * pooled program with two links through the management routes; a patient opens one link's public
 * page and submits it (the referral is routed into the pool), someone else only opens the other;
 * the routed-to specialist accepts, schedules and completes; the conversion process records the
 * stages and decides the incentive; the funnel and the incentive decisions show per link.
 */
const GIVEN = 'Zqjourneygiven'
const REASON = 'zqjourney-knee-reason'

describe('referral program journey (management routes → public intake → conversion → funnel)', () => {
  it('a program with two links created over HTTP converts an intake into a routed referral, and the funnel and award show per link', async () => {
    const clock = manualClock('2026-05-04T09:00:00.000Z' as Instant)
    const store = createInMemoryEventStore({ clock })
    const engine = createEngine({ store, clock, ids: sequentialUuids() })
    expect(await seedDemo(engine)).toBe(true)
    const test = await buildTestApp({
      store,
      resolveActor: (userId, roles) => engine.directory.resolveActor(userId as UserId, roles),
      registerRoutes: registerResourceRoutes({
        engine,
        routing: engine.routing,
        publicIntake: createPublicIntake({ engine }),
      }),
    })
    try {
      const tokenFor = (userId: string) => test.token({ userId })
      const call = async (userId: string, method: 'GET' | 'POST', url: string, payload?: object) => {
        const res = await test.app.inject({
          method,
          url,
          headers: { authorization: `Bearer ${await tokenFor(userId)}` },
          ...(payload === undefined ? {} : { payload }),
        })
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300)
        return res
      }
      const owner = DEMO.clinic.owner
      await call(owner, 'POST', '/programs', {
        programId: 'knee-outreach',
        practiceId: DEMO.clinic.practiceId,
        name: 'Lakeside knee outreach',
        target: {
          kind: 'pooled',
          regionId: 'north',
          specialtyId: DEMO.specialty,
          category: { categoryId: 'knee' },
        },
      })
      await call(owner, 'POST', '/programs/knee-outreach/consent-versions', {
        consentText: 'I agree that the clinic contacts me to arrange this appointment.',
        disclosureText: 'Lakeside Family Clinic receives no payment for referrals.',
      })
      await call(owner, 'POST', '/programs/knee-outreach/intake-guidance', {
        guidance: {
          faq: [{ question: 'Do I need a letter?', answer: 'No, this form is enough.' }],
          schedulingGuidance: 'The specialist’s office calls you within two working days.',
        },
      })
      await call(owner, 'POST', '/programs/knee-outreach/incentive-rules', {
        rule: {
          ruleId: 'thank-you',
          reward: { kind: 'patient_education', description: 'A knee-care booklet' },
          eligibility: ['referral_completed'],
          caps: { perReferrer: 1, perPeriod: { days: 30, max: 10 } },
          disclosureText: 'Non-cash only; never depends on the care anyone receives.',
        },
      })
      const linkOf = async (linkId: string, attribution: object) =>
        (await call(owner, 'POST', '/programs/knee-outreach/links', { linkId, attribution })).json() as {
          links: { linkId: string; path: string }[]
        }
      await linkOf('pharmacy', {
        channel: 'print',
        campaign: 'spring',
        referringPracticeId: DEMO.clinic.practiceId,
      })
      const program = await linkOf('newsletter', { channel: 'email', campaign: 'spring' })
      const pathOf = (linkId: string) => program.links.find((l) => l.linkId === linkId)?.path as string
      expect(pathOf('pharmacy')).toMatch(/^\/r\/[0-9A-Z]+$/)

      // The public pages, without a token.
      const page = await test.app.inject({
        method: 'GET',
        url: pathOf('pharmacy'),
        remoteAddress: '203.0.113.5',
      })
      expect(page.statusCode).toBe(200)
      expect(page.body).toContain('Do I need a letter?')
      expect(page.body).toContain('I agree that the clinic contacts me')
      const token = tokenOf(page.body)
      const opened = await test.app.inject({
        method: 'GET',
        url: pathOf('newsletter'),
        remoteAddress: '203.0.113.6',
      })
      expect(opened.statusCode).toBe(200)
      const submitted = await test.app.inject({
        method: 'POST',
        url: pathOf('pharmacy'),
        remoteAddress: '203.0.113.5',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          token,
          [F.submittedBy]: 'patient',
          [F.patientGivenName]: GIVEN,
          [F.patientFamilyName]: 'Journey',
          [F.patientDateOfBirth]: '1968-02-03',
          [F.patientEmail]: 'zqjourney@example.org',
          [F.reason]: REASON,
          [F.contactEmail]: 'yes',
          [F.consentVersion]: '1',
          [F.consentAgreed]: 'yes',
          website: '',
        }).toString(),
      })
      expect(submitted.statusCode, submitted.body).toBe(200)
      expect(submitted.body).not.toContain(GIVEN)
      expect(submitted.body).not.toContain(REASON)

      // The referral was routed into the north/knee pool like any other choose-for-me send.
      const referralId = `intake-${token}`
      const loaded = await engine.referrals.load(unsafeId<ReferralId>(referralId))()
      if (E.isLeft(loaded) || !loaded.right.state.exists) throw new Error('the intake made no referral')
      const routedTo = loaded.right.state.recipientPracticeId as string
      const north = DEMO.specialists.filter((s) => (s.regions as readonly string[]).includes('north'))
      const specialist = north.find((s) => s.practiceId === routedTo)
      expect(specialist, `routed to ${routedTo}`).toBeDefined()
      const routing = await call(owner, 'GET', `/referrals/${referralId}/routing`)
      const explained = routing.json() as { decisions: number; lines: string[] }
      expect(explained.decisions).toBe(1)
      expect(explained.lines[0]).toContain(`routed to ${routedTo} among 3 candidate(s)`)

      const spec = (specialist as { owner: string }).owner
      await call(spec, 'POST', `/referrals/${referralId}/accept`, {})
      await call(spec, 'POST', `/referrals/${referralId}/appointment`, { at: '2026-05-11T14:00:00.000Z' })
      await call(spec, 'POST', `/referrals/${referralId}/complete`, {})

      // The conversion process (a subscription in the service) over everything stored so far.
      const conversions = createIntakeConversions({ store, ids: sequentialUuids(900), clock })
      const all = await store.readAll({ streamPrefixes: ['referral-', 'intake-'] })()
      if (E.isLeft(all)) throw new Error(all.left.message)
      for (const e of all.right as readonly StoredEvent[])
        if (e.streamId.startsWith('referral-') || e.streamId.startsWith('intake-'))
          await conversions.handle(e)

      const funnel = (await call(owner, 'GET', '/programs/knee-outreach/funnel')).json() as {
        links: { linkId: string; stages: Record<string, { count: number }> }[]
      }
      const counts = (linkId: string) =>
        Object.fromEntries(
          Object.entries(funnel.links.find((l) => l.linkId === linkId)?.stages ?? {}).map(([k, v]) => [
            k,
            v.count,
          ]),
        )
      expect(counts('pharmacy')).toEqual({
        opened: 1,
        submitted: 1,
        referralSent: 1,
        scheduled: 1,
        completed: 1,
        noShow: 0,
      })
      expect(counts('newsletter')).toEqual({
        opened: 1,
        submitted: 0,
        referralSent: 0,
        scheduled: 0,
        completed: 0,
        noShow: 0,
      })
      const incentives = await call(owner, 'GET', '/programs/knee-outreach/incentives')
      expect(incentives.json()).toMatchObject({
        decisions: [expect.objectContaining({ linkId: 'pharmacy', outcome: 'awarded' })],
      })
      expect(incentives.body).not.toContain(GIVEN)
      expect(JSON.stringify(funnel)).not.toContain(token)
    } finally {
      await test.app.close()
    }
  })
})
