import { type Instant, type ReferralId, type UserId, unsafeId } from '@referrals/core'
import { createWorld, type World } from '@referrals/core/testing'
import { describe, expect, it } from 'vitest'
import type { Notification } from './notification.js'
import { inMemoryOutbox } from './outbox.js'
import { inMemoryPreferences } from './preferences.js'
import { createOutboxProjector } from './projector.js'
import { patientSmsDecision, smsNotification, smsText, toE164 } from './sms.js'

const at = (iso: string) => Date.parse(iso)
/** 21:00–08:00 in Toronto; in January that is EST (UTC-5): 02:00Z–13:00Z. */
const quietHours = { start: '21:00', end: '08:00', timeZone: 'America/Toronto' }
const PHONE = '+15145550123'

describe('patientSmsDecision', () => {
  const decide = (nowIso: string, overrides: Partial<Parameters<typeof patientSmsDecision>[0]> = {}) =>
    patientSmsDecision({ consent: true, phone: PHONE, quietHours, nowMs: at(nowIso), ...overrides })

  it('sends nothing without SMS consent, even outside quiet hours', () => {
    expect(decide('2026-01-15T17:00:00.000Z', { consent: false })).toEqual({
      send: false,
      reason: 'no_consent',
    })
  })

  it('sends nothing without a phone number or with one that is not E.164', () => {
    expect(decide('2026-01-15T17:00:00.000Z', { phone: undefined })).toEqual({
      send: false,
      reason: 'no_phone',
    })
    expect(decide('2026-01-15T17:00:00.000Z', { phone: '514-555-0123' })).toEqual({
      send: false,
      reason: 'invalid_phone',
    })
    expect(toE164('+1 (514) 555-0123')).toBe(PHONE)
    expect(toE164('+1 514.555.0123')).toBe(PHONE)
    expect(toE164('+0123456789')).toBeNull()
    expect(toE164('call me')).toBeNull()
  })

  it('sends at once in the last minute before quiet hours and from their end minute on', () => {
    // 20:59 local
    expect(decide('2026-01-16T01:59:00.000Z')).toEqual({
      send: true,
      phone: PHONE,
      atMs: at('2026-01-16T01:59:00.000Z'),
    })
    // 08:00 local
    expect(decide('2026-01-15T13:00:00.000Z')).toEqual({
      send: true,
      phone: PHONE,
      atMs: at('2026-01-15T13:00:00.000Z'),
    })
  })

  it('holds a message from the start minute of quiet hours to their end, in the patients’ time zone', () => {
    // 21:00 local (start minute) → 08:00 local next morning
    expect(decide('2026-01-16T02:00:00.000Z')).toMatchObject({
      send: true,
      atMs: at('2026-01-16T13:00:00.000Z'),
    })
    // 07:59 local (last quiet minute) → 08:00 local
    expect(decide('2026-01-15T12:59:00.000Z')).toMatchObject({
      send: true,
      atMs: at('2026-01-15T13:00:00.000Z'),
    })
    // 03:00 local
    expect(decide('2026-01-15T08:00:00.000Z')).toMatchObject({
      send: true,
      atMs: at('2026-01-15T13:00:00.000Z'),
    })
    // The same instant, 20:30Z, is 21:30 in Berlin (quiet until 08:00 CET = 07:00Z) but 15:30 in Toronto.
    expect(decide('2026-01-15T20:30:00.000Z')).toMatchObject({ atMs: at('2026-01-15T20:30:00.000Z') })
    expect(
      decide('2026-01-15T20:30:00.000Z', { quietHours: { ...quietHours, timeZone: 'Europe/Berlin' } }),
    ).toMatchObject({ atMs: at('2026-01-16T07:00:00.000Z') })
    // No quiet hours configured: at once.
    expect(decide('2026-01-15T08:00:00.000Z', { quietHours: undefined })).toMatchObject({
      atMs: at('2026-01-15T08:00:00.000Z'),
    })
  })
})

describe('SMS text', () => {
  const base: Notification = {
    id: 'e1:recipient:recipient.new_referral:sms:practice-p1',
    eventId: 'e1',
    kind: 'recipient.new_referral',
    audience: 'recipient',
    subject: 'New referral from Canary Clinic',
    text: 'Canary Clinic sent a referral for Patient Canary: knee pain, urgent.',
    payload: {
      referralId: 'r-7',
      specialtyId: 'ortho',
      urgency: 'urgent',
      senderPracticeName: 'Canary Clinic',
    },
    links: { accept: 'https://x.test/a', decline: 'https://x.test/d' },
  }

  it('is fixed wording with the referral number for practices and without it for patients', () => {
    expect(smsText(base)).toBe('New referral: #r-7. Open the referral list for details.')
    expect(smsText({ ...base, kind: 'sender.declined', audience: 'sender' })).toBe(
      'Your referral was declined: #r-7. Open the referral list for details.',
    )
    expect(smsText({ ...base, kind: 'patient.confirmation', audience: 'patient' })).toBe(
      'Your referral was sent. The specialist office will contact you.',
    )
    const queued = smsNotification(base)
    expect(queued.text).toBe('New referral: #r-7. Open the referral list for details.')
    expect(queued.subject).toBe('')
    expect(queued.links).toBeUndefined()
    for (const kind of [
      'recipient.new_referral',
      'recipient.reminder',
      'sender.accepted',
      'patient.unavailable',
    ])
      expect(smsText({ ...base, kind })).not.toMatch(/canary|knee|urgent|ortho|https?:/i)
  })
})

const sendWithSmsConsent = async (w: World, referralId: string, phone: string, sms: boolean) => {
  const data = w.sendData(referralId)
  const phi = data.phi as { patient: object; reason: string }
  await w.must(
    w.engine.referrals.execute(
      unsafeId<ReferralId>(referralId),
      {
        type: 'SendReferral',
        data: {
          ...data,
          // Email consent without SMS consent still yields patient notifications: SMS must skip them.
          phi: { ...phi, patient: { ...phi.patient, phone, consent: { email: !sms, sms, phone: false } } },
        } as typeof data,
      },
      await w.as(w.ownerOf('clinic')),
    ),
  )
}

describe('SMS entries from committed events', () => {
  it('texts a consenting patient after quiet hours (injected clock), never one without consent, with no PHI', async () => {
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    const outbox = inMemoryOutbox()
    const preferences = inMemoryPreferences()
    await preferences.put({ kind: 'practice', practiceId: a }, { channels: { sms: '+15145550100' } })
    await preferences.put(
      { kind: 'user', userId: unsafeId<UserId>('owner-spec-a') },
      { channels: { sms: '+15145550101' } },
    )
    await preferences.put(
      { kind: 'practice', practiceId: w.ids.clinic },
      { channels: { sms: '+15145550102' } },
    )
    // 21:30 EST on 2026-03-02: inside the patients' quiet hours.
    w.clock.set('2026-03-03T02:30:00.000Z' as Instant)
    await sendWithSmsConsent(w, 'sms-1', '+1 514 555 0123', true)
    await sendWithSmsConsent(w, 'sms-2', '+15145550124', false)
    await w.must(
      w.engine.referrals.execute(
        unsafeId<ReferralId>('sms-1'),
        { type: 'DeclineReferral', data: { reasonCode: 'capacity' } },
        await w.as(w.ownerOf('spec-a')),
      ),
    )
    const projector = createOutboxProjector({
      store: w.store,
      engine: w.engine,
      outbox,
      preferences,
      clock: w.clock,
      patientSms: { quietHours },
    })
    await projector.start().caughtUp()
    await projector.stop()

    const sms = (await outbox.list()).filter((e) => e.channel === 'sms')
    const toPatient = sms.filter((e) => e.notification.audience === 'patient')
    expect(
      toPatient.map((e) => [
        e.notification.kind,
        e.address,
        e.state.status === 'pending' && e.state.nextAttemptAtMs,
      ]),
    ).toEqual([
      ['patient.confirmation', { phone: PHONE }, at('2026-03-03T13:00:00.000Z')],
      // The declined direct referral is returned: the patient is told it could not be placed yet.
      ['patient.unavailable', { phone: PHONE }, at('2026-03-03T13:00:00.000Z')],
    ])
    const toPractices = sms.filter((e) => e.notification.audience !== 'patient')
    expect(toPractices.length).toBeGreaterThanOrEqual(4)
    for (const e of toPractices) {
      // Only the fixed phrase and a referral number of this test; nothing else.
      expect(e.notification.text).toMatch(/^[A-Za-z ,:]+: #sms-[12]\. Open the referral list for details\.$/)
      expect(e.notification.links).toBeUndefined()
    }
    for (const e of sms) {
      const sent = `${e.notification.subject} ${e.notification.text}`
      expect(sent).not.toMatch(
        /canary|patient-sms|HN-|reason|orthopedics|knee|routine|spec-a|clinic|https?:/i,
      )
    }
  })
})
