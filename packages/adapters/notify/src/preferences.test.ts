import type { PracticeId, UserId } from '@referrals/core'
import { describe, expect, it } from 'vitest'
import { inMemoryPreferences, parseNotificationPreferences, quietHoursRelease } from './preferences.js'

const at = (iso: string) => Date.parse(iso)
const quiet = { start: '22:00', end: '07:00', timeZone: 'America/Toronto' }

describe('quiet hours', () => {
  it('delays a time inside an overnight quiet period to its end, in the local time zone', () => {
    // 23:30 in Toronto (EST, UTC-5) is 04:30 UTC; the period ends at 07:00 local = 12:00 UTC.
    expect(quietHoursRelease(quiet, at('2026-01-15T04:30:00.000Z'))).toBe(at('2026-01-15T12:00:00.000Z'))
    // 02:15 local: same morning's 07:00.
    expect(quietHoursRelease(quiet, at('2026-01-15T07:15:00.000Z'))).toBe(at('2026-01-15T12:00:00.000Z'))
    // 22:00 local exactly is quiet; 07:00 local exactly is not.
    expect(quietHoursRelease(quiet, at('2026-01-15T03:00:00.000Z'))).toBe(at('2026-01-15T12:00:00.000Z'))
    expect(quietHoursRelease(quiet, at('2026-01-15T12:00:00.000Z'))).toBe(at('2026-01-15T12:00:00.000Z'))
  })

  it('leaves times outside the quiet period alone', () => {
    expect(quietHoursRelease(quiet, at('2026-01-15T15:00:00.000Z'))).toBe(at('2026-01-15T15:00:00.000Z'))
    expect(quietHoursRelease(undefined, 42)).toBe(42)
    expect(quietHoursRelease({ ...quiet, start: '07:00' }, at('2026-01-15T04:30:00.000Z'))).toBe(
      at('2026-01-15T04:30:00.000Z'),
    )
  })

  it('ends at the local end time across a DST switch inside the quiet period', () => {
    // Toronto springs forward on 2026-03-08 at 02:00 EST: 01:00 EST (06:00Z) waits for 07:00 EDT (11:00Z).
    expect(quietHoursRelease(quiet, at('2026-03-08T06:00:00.000Z'))).toBe(at('2026-03-08T11:00:00.000Z'))
    // It falls back on 2026-11-01 at 02:00 EDT: 23:30 EDT (03:30Z) waits for 07:00 EST (12:00Z).
    expect(quietHoursRelease(quiet, at('2026-11-01T03:30:00.000Z'))).toBe(at('2026-11-01T12:00:00.000Z'))
  })

  it('handles a daytime quiet period', () => {
    const lunch = { start: '12:00', end: '13:30', timeZone: 'UTC' }
    expect(quietHoursRelease(lunch, at('2026-01-15T12:10:00.000Z'))).toBe(at('2026-01-15T13:30:00.000Z'))
    expect(quietHoursRelease(lunch, at('2026-01-15T11:59:59.999Z'))).toBe(at('2026-01-15T11:59:59.999Z'))
  })
})

describe('preferences', () => {
  it('keeps practice and user preferences apart', async () => {
    const store = inMemoryPreferences()
    const practice = { kind: 'practice', practiceId: 'p1' as PracticeId } as const
    const user = { kind: 'user', userId: 'p1' as UserId } as const
    await store.put(practice, { channels: { email: 'office@example.test' } })
    expect(await store.get(practice)).toEqual({ channels: { email: 'office@example.test' } })
    expect(await store.get(user)).toBeNull()
    await store.remove(practice)
    expect(await store.get(practice)).toBeNull()
  })

  it('parses valid preferences and drops unknown fields', () => {
    expect(
      parseNotificationPreferences({
        channels: { email: 'a@b.test', webhook: 'https://hooks.example.test/x' },
        quietHours: quiet,
        extra: 1,
      }),
    ).toEqual({
      ok: true,
      value: { channels: { email: 'a@b.test', webhook: 'https://hooks.example.test/x' }, quietHours: quiet },
    })
  })

  it('parses the slack and sms channels, the Slack member id and the chat detail', () => {
    const input = {
      channels: { slack: 'https://hooks.slack.test/services/T0/B0/x', sms: '+15145550123' },
      slackUserId: 'U0123ABC',
      chatDetail: 'full',
    }
    expect(parseNotificationPreferences(input)).toEqual({ ok: true, value: input })
    expect(parseNotificationPreferences({ channels: { sms: '5145550123' } }).ok).toBe(false)
    expect(parseNotificationPreferences({ channels: { sms: '+1514555012345678' } }).ok).toBe(false)
  })

  it('names fields, never values, in errors', () => {
    const result = parseNotificationPreferences({
      channels: {
        email: 'CANARY not an email',
        webhook: 'ftp://CANARY',
        slack: 'CANARY',
        sms: '555-CANARY',
      },
      webhookSecret: 'CANARY',
      slackUserId: '<@CANARY>',
      chatDetail: 'CANARY',
      quietHours: { start: '25:00', end: '7', timeZone: 'Mars/CANARY' },
    })
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.errors).toEqual([
      'channels.email: expected an email address',
      'channels.webhook: expected an http(s) URL',
      'channels.slack: expected an http(s) URL',
      'channels.sms: expected an E.164 phone number',
      'webhookSecret: expected 16 to 256 characters',
      'slackUserId: expected a Slack member id',
      "chatDetail: expected 'minimal' or 'full'",
      'quietHours.start: expected HH:MM',
      'quietHours.end: expected HH:MM',
      'quietHours.timeZone: expected an IANA time zone',
    ])
    expect(JSON.stringify(result)).not.toContain('CANARY')
    expect(parseNotificationPreferences('x')).toEqual({ ok: false, errors: ['body: expected an object'] })
  })
})
