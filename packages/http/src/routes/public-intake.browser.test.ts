/// <reference lib="dom" />
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { INTAKE_FIELDS as F, type ReferralId, unsafeId } from '@referrals/core'
import puppeteer, { type Browser } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CODES, createTestProgram } from './public-intake-testing.js'
import { buildRoutesTestApp, type RoutesTestApp } from './testing-routes.js'

/**
 * The public intake page in a real headless Chromium (Debian's `/usr/bin/chromium`, or
 * `CHROMIUM_PATH`; never a downloaded browser), JavaScript switched off to prove the form needs
 * none: open the link, fill the form in, submit, see the confirmation; the referral exists and
 * was routed to a pool member.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const HAS_CHROMIUM = existsSync(CHROMIUM)
if (!HAS_CHROMIUM)
  console.warn(
    `public-intake.browser.test.ts: the Chromium test is skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`,
  )

let t: RoutesTestApp
let base = ''
let browser: Browser | undefined

beforeAll(async () => {
  if (!HAS_CHROMIUM) return
  t = await buildRoutesTestApp({ sealPhi: true })
  await createTestProgram(t)
  await t.app.listen({ host: '127.0.0.1', port: 0 })
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
  browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await t?.app.close()
})

describe.runIf(HAS_CHROMIUM)('the public intake page in headless Chromium', () => {
  it('fills in, submits and confirms without JavaScript; the referral is routed to a pool member', async () => {
    const page = await (browser as Browser).newPage()
    await page.setJavaScriptEnabled(false)
    const requests: string[] = []
    page.on('request', (r) => requests.push(r.url()))
    const opened = await page.goto(`${base}/r/${CODES.active}`)
    expect(opened?.status()).toBe(200)
    expect(await page.$eval('html', (el) => el.getAttribute('lang'))).toBe('en')
    expect(await page.$eval('h1', (el) => el.textContent)).toBe('Clinic')

    await page.click(`#${F.submittedBy}-caregiver`)
    await page.select(`#${F.relationship}`, 'parent')
    await page.type(`#${F.patientGivenName}`, 'Ada')
    await page.type(`#${F.patientFamilyName}`, 'Lovelace')
    await page.type(`#${F.patientDateOfBirth}`, '2015-12-10')
    await page.type(`#${F.caregiverGivenName}`, 'Anne')
    await page.type(`#${F.caregiverFamilyName}`, 'Byron')
    await page.type(`#${F.caregiverPhone}`, '+1 555 010 2030')
    await page.click(`#${F.contactSms}`)
    await page.type(`#${F.reason}`, 'Knee pain after a fall')
    await page.click(`#${F.consentAgreed}`)
    const [response] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')])
    expect(response?.status()).toBe(200)
    expect(await page.$eval('#confirmation', (el) => el.textContent)).toContain('has your referral request')
    expect(await page.content()).not.toMatch(/Ada|Lovelace|Knee/)
    // Nothing but the page itself and its form: no CDN, no script, no third party.
    expect(requests.every((url) => url.startsWith(base))).toBe(true)

    const submitted = t.domainEvents().find((e) => e.type === 'IntakeSubmitted')
    expect(submitted?.data).toMatchObject({
      submittedBy: { kind: 'caregiver', relationship: 'parent' },
      communication: { email: false, sms: true, phone: false, mail: false },
      consent: { version: 1 },
    })
    const intakeId = String((submitted?.data as { intakeId?: string } | undefined)?.intakeId)
    const referral = await t.engine.referrals.load(unsafeId<ReferralId>(`intake-${intakeId}`))()
    if (referral._tag === 'Left' || !referral.right.state.exists) throw new Error('no referral')
    expect(referral.right.state.status).toBe('pending')
    expect(['spec-a', 'spec-b']).toContain(referral.right.state.recipientPracticeId)
    expect(referral.right.events[0]).toMatchObject({
      data: {
        phi: { patient: { givenName: 'Ada', dateOfBirth: '2015-12-10' }, reason: 'Knee pain after a fall' },
      },
    })
    await page.close()
  }, 60_000)
})
