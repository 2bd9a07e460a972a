import {
  INTAKE_FIELDS as F,
  type IntakeId,
  REDACTED,
  type ReferralId,
  unsafeId,
  verifyEventStore,
} from '@referrals/core'
import { sha256Hasher } from '@referrals/crypto'
import * as E from 'fp-ts/lib/Either.js'
import { afterAll, describe, expect, it } from 'vitest'
import { CODES, createTestProgram, tokenOf } from '../routes/public-intake-testing.js'
import { buildRoutesTestApp, type RoutesTestApp } from '../routes/testing-routes.js'

/**
 * Forgetting a person who came in through a public intake link: their data key (the intake's
 * patient, `intake-<intakeId>`, also the patient of the referral it became) is destroyed; the
 * intake and the referral read as redacted, the funnel still replays and the hash chain over the
 * stored events still verifies. PHI is sealed with AES-GCM under per-patient keys, as `serve` does.
 */
const GIVEN = 'Zqforgetgiven'
const FAMILY = 'Zqforgetfamily'
const PHONE = '+1 555 777 1234'

let t: RoutesTestApp | undefined
afterAll(async () => {
  await t?.app.close()
})

describe('forgetting a public-intake patient', () => {
  it('removes the intake and referral plaintext; history replays and the chain verifies', async () => {
    t = await buildRoutesTestApp({ sealPhi: true, hashChain: true })
    await createTestProgram(t)
    const token = tokenOf((await t.app.inject({ method: 'GET', url: `/r/${CODES.active}` })).body)
    const form = new URLSearchParams({
      token,
      [F.submittedBy]: 'patient',
      [F.patientGivenName]: GIVEN,
      [F.patientFamilyName]: FAMILY,
      [F.patientDateOfBirth]: '1950-01-02',
      [F.patientPhone]: PHONE,
      [F.contactPhone]: 'yes',
      [F.consentVersion]: '1',
      [F.consentAgreed]: 'yes',
    }).toString()
    const submit = () =>
      (t as RoutesTestApp).app.inject({
        method: 'POST',
        url: `/r/${CODES.active}`,
        payload: form,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
    expect((await submit()).statusCode).toBe(200)
    const intakeId = unsafeId<IntakeId>(token)
    const referralId = unsafeId<ReferralId>(`intake-${token}`)
    const raw = () => JSON.stringify(t?.store.snapshot().map((e) => e.data))
    // Sealed from the start: the stored events never held the plaintext.
    expect(raw()).not.toContain(GIVEN)
    const before = await t.publicIntake.load(intakeId)()
    expect(E.isRight(before) && before.right.events[1]).toMatchObject({
      data: { phi: { patient: { givenName: GIVEN } } },
    })

    await t.keys.destroy(unsafeId(`intake-${token}`))

    const intake = await t.publicIntake.load(intakeId)()
    if (E.isLeft(intake)) throw new Error(intake.left.message)
    expect(intake.right.events.map((e) => e.type)).toEqual([
      'ReferralLinkOpened',
      'IntakeSubmitted',
      'IntakeReferralSent',
    ])
    expect(intake.right.events[1]).toMatchObject({
      data: { phi: REDACTED, consent: { version: 1 }, communication: { phone: true } },
    })
    expect(intake.right.state.exists && intake.right.state.stage).toBe('referred')
    const referral = await t.engine.referrals.load(referralId)()
    if (E.isLeft(referral)) throw new Error(referral.left.message)
    expect(referral.right.events[0]).toMatchObject({ type: 'ReferralSent', data: { phi: REDACTED } })
    expect(JSON.stringify(intake.right.events)).not.toMatch(new RegExp(`${GIVEN}|${FAMILY}|555 777`))
    expect(JSON.stringify(referral.right.events)).not.toMatch(new RegExp(`${GIVEN}|${FAMILY}|555 777`))

    const verified = await verifyEventStore(t.eventStore, sha256Hasher)()
    expect(E.isRight(verified) && verified.right.ok).toBe(true)
    expect(E.isRight(verified) && verified.right.eventsChecked).toBe(t.store.snapshot().length)
    // The form retried after forgetting still answers the confirmation and records nothing new.
    const count = t.store.snapshot().length
    expect((await submit()).statusCode).toBe(200)
    expect(t.store.snapshot().length).toBe(count)
    expect(t.logs()).not.toMatch(new RegExp(`${GIVEN}|${FAMILY}`))
  })
})
