import { INTAKE_FIELDS as F, type ReferralId, unsafeId } from '@referrals/core'
import { afterEach, describe, expect, it } from 'vitest'
import {
  CODES,
  CONSENT_TEXT,
  createTestProgram,
  DISCLOSURE_TEXT,
  GUIDANCE,
  tokenOf,
} from './public-intake-testing.js'
import { buildRoutesTestApp, type RoutesTestApp, type RoutesTestOptions } from './testing-routes.js'

/** PHI canaries typed into the form: they must never come back in a page or a log line. */
const GIVEN = 'Zqintakegiven'
const FAMILY = 'Zqintakefamily'
const EMAIL = 'zqintake@example.org'
const REASON = 'zqintake-reason-knee'
const CANARY = new RegExp(`${GIVEN}|${FAMILY}|${EMAIL}|${REASON}`, 'i')

const validForm = (token: string, overrides: Record<string, string> = {}) =>
  new URLSearchParams({
    token,
    [F.submittedBy]: 'patient',
    [F.patientGivenName]: GIVEN,
    [F.patientFamilyName]: FAMILY,
    [F.patientDateOfBirth]: '1970-05-06',
    [F.patientEmail]: EMAIL,
    [F.reason]: REASON,
    [F.contactEmail]: 'yes',
    [F.consentVersion]: '1',
    [F.consentAgreed]: 'yes',
    website: '',
    ...overrides,
  }).toString()

let t: RoutesTestApp | undefined
afterEach(async () => {
  await t?.app.close()
  t = undefined
})

const setup = async (options: RoutesTestOptions = {}) => {
  t = await buildRoutesTestApp(options)
  program = await createTestProgram(t)
  return t
}
let program: Awaited<ReturnType<typeof createTestProgram>>
const open = (app: RoutesTestApp, code: string = CODES.active, remoteAddress = '198.51.100.7') =>
  app.app.inject({ method: 'GET', url: `/r/${code}`, remoteAddress })
const post = (
  app: RoutesTestApp,
  body: string,
  code: string = CODES.active,
  remoteAddress = '198.51.100.7',
) =>
  app.app.inject({
    method: 'POST',
    url: `/r/${code}`,
    payload: body,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    remoteAddress,
  })
const typesOf = (app: RoutesTestApp) => app.domainEvents().map((e) => e.type)

describe('GET /r/:code', () => {
  it('serves an accessible intake page without a token and records the link opened', async () => {
    const app = await setup()
    const before = app.domainEvents().length
    const res = await open(app)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    const html = res.body
    expect(html).toContain('<html lang="en">')
    expect(html).toContain('<h1>Clinic</h1>')
    expect(html).toContain(CONSENT_TEXT)
    expect(html).toContain(DISCLOSURE_TEXT)
    expect(html).toContain('Consent (version 1)')
    expect(html).toContain(`<dt>${GUIDANCE.faq[0]?.question}</dt>`)
    expect(html).toContain(GUIDANCE.faq[0]?.answer)
    expect(html).toContain(GUIDANCE.insuranceGuidance)
    expect(html).toContain(GUIDANCE.schedulingGuidance)
    expect(html).toMatch(/<fieldset>\s*<legend>Who is filling in this form\?<\/legend>/)
    expect(html).toContain('<label for="patientGivenName">')
    expect(html).toContain('<select id="relationship" name="relationship"')
    expect(html).toContain('name="contactSms"')
    expect(html).toContain('<form method="post" action="/r/AAAA000001"')
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3)/)
    const added = app.domainEvents().slice(before)
    expect(added.map((e) => e.type)).toEqual(['ReferralLinkOpened'])
    expect(added[0]?.streamId).toBe(`intake-${tokenOf(html)}`)
    expect(added[0]?.metadata.actor).toEqual({ kind: 'system', component: 'public-intake' })
  })

  it('answers 404 for an unknown or malformed code and 410 for a paused or retired link, with no detail', async () => {
    const app = await setup()
    const before = app.domainEvents().length
    for (const [code, status] of [
      ['ZZZZ999999', 404],
      ['not-a-code', 404],
      [CODES.paused, 410],
      [CODES.retired, 410],
    ] as const) {
      const res = await open(app, code)
      expect(res.statusCode, code).toBe(status)
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
      expect(res.body).not.toContain(code)
      expect(res.body).not.toMatch(/Clinic|Knee care|poster|consent/i)
    }
    expect(app.domainEvents().length).toBe(before)
  })
})

describe('POST /r/:code', () => {
  it('turns the intake into a pooled referral routed to a pool member; confirmation without clinical detail', async () => {
    const app = await setup()
    const token = tokenOf((await open(app)).body)
    const res = await post(app, validForm(token))
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain('your request was received')
    expect(res.body).not.toMatch(CANARY)
    expect(res.body).not.toMatch(/knee/i)
    const referral = await app.engine.referrals.load(unsafeId<ReferralId>(`intake-${token}`))()
    if (referral._tag === 'Left' || !referral.right.state.exists) throw new Error('no referral')
    const state = referral.right.state
    expect(state.status).toBe('pending')
    expect(['spec-a', 'spec-b']).toContain(state.recipientPracticeId)
    expect(state.senderPracticeId).toBe('clinic')
    expect(referral.right.events[0]).toMatchObject({
      type: 'ReferralSent',
      data: {
        patientId: `intake-${token}`,
        attribution: { channel: 'poster', campaign: 'active' },
        phi: {
          patient: { givenName: GIVEN, email: EMAIL, consent: { email: true, sms: false, phone: false } },
          reason: REASON,
        },
      },
    })
    const intake = app.domainEvents().filter((e) => e.streamId === `intake-${token}`)
    expect(intake.map((e) => e.type)).toEqual(['ReferralLinkOpened', 'IntakeSubmitted', 'IntakeReferralSent'])
    expect(intake[1]?.data).toMatchObject({
      consent: { version: 1, agreedAt: '2026-04-01T09:00:00.000Z' },
      communication: { email: true, sms: false, phone: false, mail: false },
    })
    expect(app.logs()).not.toMatch(CANARY)
  })

  it('records a caregiver with the relationship', async () => {
    const app = await setup()
    const token = tokenOf((await open(app)).body)
    const res = await post(
      app,
      validForm(token, {
        [F.submittedBy]: 'caregiver',
        [F.relationship]: 'legal_guardian',
        [F.caregiverGivenName]: 'Zqcaregiver',
        [F.caregiverFamilyName]: FAMILY,
      }),
    )
    expect(res.statusCode).toBe(200)
    const submitted = app.domainEvents().find((e) => e.type === 'IntakeSubmitted')
    expect(submitted?.data).toMatchObject({
      submittedBy: { kind: 'caregiver', relationship: 'legal_guardian' },
      phi: { caregiver: { givenName: 'Zqcaregiver' } },
    })
  })

  it('a retried POST of the same form makes one referral and answers the same confirmation', async () => {
    const app = await setup()
    const token = tokenOf((await open(app)).body)
    const first = await post(app, validForm(token))
    const second = await post(app, validForm(token))
    expect([first.statusCode, second.statusCode]).toEqual([200, 200])
    expect(second.body).toBe(first.body)
    expect(typesOf(app).filter((type) => type === 'ReferralSent')).toHaveLength(1)
    expect(typesOf(app).filter((type) => type === 'IntakeSubmitted')).toHaveLength(1)
  })

  it('validates every field: 422 with a message per field, the form shown empty, nothing stored, nothing echoed', async () => {
    const app = await setup()
    const token = tokenOf((await open(app)).body)
    const before = app.domainEvents().length
    const res = await post(
      app,
      validForm(token, {
        [F.patientGivenName]: '',
        [F.patientDateOfBirth]: `${GIVEN}-not-a-date`,
        [F.patientEmail]: `${FAMILY}-not-an-email`,
        [F.contactSms]: 'yes',
        [F.consentAgreed]: '',
      }),
    )
    expect(res.statusCode).toBe(422)
    expect(res.body).toContain('There is a problem with your answers')
    for (const message of [
      'Enter the patient&#39;s first name.',
      'Enter the date of birth as year-month-day, e.g. 1980-04-23.',
      'Enter an email address like name@example.org, or leave it empty.',
      'To be contacted by text message, enter a phone number above.',
      'You must agree to the consent text to continue.',
    ])
      expect(res.body).toContain(message)
    expect(res.body).toContain('aria-invalid="true"')
    expect(res.body).not.toMatch(CANARY)
    expect(res.body).toContain(`name="token" value="${token}"`)
    expect(app.domainEvents().length).toBe(before)
    expect(app.logs()).not.toMatch(CANARY)
  })

  it('a filled honeypot is refused (400) and nothing is stored', async () => {
    const app = await setup()
    const token = tokenOf((await open(app)).body)
    const before = app.domainEvents().length
    const res = await post(app, validForm(token, { website: 'http://spam.example' }))
    expect(res.statusCode).toBe(400)
    expect(res.body).not.toMatch(CANARY)
    expect(app.domainEvents().length).toBe(before)
  })

  it('refuses a form for a link retired after the page was served (410), a foreign token (400), JSON (415)', async () => {
    const app = await setup()
    const token = tokenOf((await open(app)).body)
    const before = app.domainEvents().length
    expect((await post(app, validForm('no-such-intake'))).statusCode).toBe(400)
    await program.run({ type: 'RetireReferralLink', data: { linkId: unsafeId('link-active') } } as never)
    const afterRetire = app.domainEvents().length
    const res = await post(app, validForm(token))
    expect(res.statusCode).toBe(410)
    expect(res.body).not.toMatch(CANARY)
    const json = await app.app.inject({
      method: 'POST',
      url: `/r/${CODES.active}`,
      payload: { token },
      headers: { 'content-type': 'application/json' },
    })
    expect(json.statusCode).toBe(415)
    expect(app.domainEvents().length).toBe(afterRetire)
    expect(afterRetire).toBe(before + 1)
  })

  it('limits submissions per client address and requests per link (429 with Retry-After)', async () => {
    const app = await setup({
      publicIntakeLimits: {
        submitsPerAddress: { max: 2, windowMs: 60_000 },
        requestsPerLink: { max: 6, windowMs: 60_000 },
      },
    })
    const body = validForm('no-such-intake')
    const fromOne = [await post(app, body), await post(app, body), await post(app, body)]
    expect(fromOne.map((r) => r.statusCode)).toEqual([400, 400, 429])
    expect(fromOne[2]?.headers['retry-after']).toMatch(/^\d+$/)
    expect(fromOne[2]?.body).toContain('Too many requests')
    // Other addresses still may use the link until its own budget (6) is spent: the 2 counted
    // above (the refused third never reached the link's count) and 4 page views.
    const others = []
    for (const n of [1, 2, 3, 4, 5]) others.push((await open(app, CODES.active, `203.0.113.${n}`)).statusCode)
    expect(others).toEqual([200, 200, 200, 200, 429])
    // Another link is not affected.
    expect((await open(app, CODES.paused, '203.0.113.9')).statusCode).toBe(410)
  })
})
