import { describe, expect, it } from 'vitest'
import { testConfig } from '../testing.js'
import { NotificationConfigError, readNotificationSettings } from './settings.js'

const MASTER_KEY = Buffer.alloc(32, 3).toString('base64')
const dev = testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY })
const production = { ...dev, production: true }

const problemsOf = (fn: () => unknown): readonly string[] => {
  try {
    fn()
  } catch (error) {
    if (error instanceof NotificationConfigError) return error.problems
    throw error
  }
  throw new Error('expected a NotificationConfigError')
}

describe('readNotificationSettings', () => {
  it('has development defaults: the service address, a derived link key, http and no private hosts', () => {
    const s = readNotificationSettings(dev, {})
    expect(s.publicBaseUrl.href).toBe('http://127.0.0.1:3000/')
    expect(s.decisionLinkSecret).toHaveLength(32)
    expect(s.webhookSecret).toBeUndefined()
    expect(s.smtp).toBeUndefined()
    expect(s.webhookPolicy).toEqual({ httpsOnly: false, allowPrivate: false })
    expect([s.schedulerIntervalMs, s.deliveryIntervalMs]).toEqual([30_000, 5_000])
  })

  it('parses SMTP_URL with credentials and requires TLS in production', () => {
    const s = readNotificationSettings(production, {
      PUBLIC_BASE_URL: 'https://referrals.example',
      SMTP_URL: 'smtp://mailer:p%40ss@mail.example.com',
      SMTP_FROM: 'Referrals <no-reply@referrals.example>',
      NOTIFY_SCHEDULER_INTERVAL: '1m',
      NOTIFY_DELIVERY_INTERVAL: '500ms',
    })
    expect(s.smtp).toEqual({
      host: 'mail.example.com',
      port: 587,
      secure: false,
      requireTLS: true,
      auth: { user: 'mailer', pass: 'p@ss' },
      from: 'Referrals <no-reply@referrals.example>',
    })
    expect(s.webhookPolicy).toEqual({ httpsOnly: true, allowPrivate: false })
    expect([s.schedulerIntervalMs, s.deliveryIntervalMs]).toEqual([60_000, 500])
    expect(
      readNotificationSettings(dev, { SMTP_URL: 'smtps://mail.example.com', SMTP_FROM: 'a@b.example' }).smtp,
    ).toMatchObject({ port: 465, secure: true, requireTLS: false })
  })

  it('configures an HTTP SMS gateway (https in production, bearer token) and names bad settings without their values', () => {
    expect(readNotificationSettings(dev, {}).smsGateway).toBeUndefined()
    const s = readNotificationSettings(production, {
      PUBLIC_BASE_URL: 'https://referrals.example',
      SMS_GATEWAY_URL: 'https://sms.example/v1/messages',
      SMS_GATEWAY_FROM: 'Referrals',
      SMS_GATEWAY_TOKEN: 'tok_0123456789',
    })
    expect(s.smsGateway).toEqual({
      url: 'https://sms.example/v1/messages',
      from: 'Referrals',
      auth: { kind: 'bearer', token: 'tok_0123456789' },
    })
    const problems = problemsOf(() =>
      readNotificationSettings(production, {
        PUBLIC_BASE_URL: 'https://referrals.example',
        SMS_GATEWAY_URL: 'http://user:canarypass@sms.example/v1',
        SMS_GATEWAY_FROM: 'a sender id far too long',
        SMS_GATEWAY_TOKEN: 'short',
      }),
    )
    expect(problems.map((p) => p.split(' ')[0])).toEqual([
      'SMS_GATEWAY_URL',
      'SMS_GATEWAY_FROM',
      'SMS_GATEWAY_TOKEN',
    ])
    expect(problems.join('\n')).not.toContain('canarypass')
  })

  it('lists every problem by variable name, never the values', () => {
    const secretish = 'short-canary-secret'
    const problems = problemsOf(() =>
      readNotificationSettings(production, {
        DECISION_LINK_SECRET: secretish,
        NOTIFY_WEBHOOK_SECRET: 'tiny',
        SMTP_URL: 'http://canary-host',
        NOTIFY_ALLOW_PRIVATE_WEBHOOKS: 'yes',
        NOTIFY_DELIVERY_INTERVAL: 'soon',
      }),
    )
    expect(problems.map((p) => p.split(' ')[0])).toEqual([
      'PUBLIC_BASE_URL',
      'DECISION_LINK_SECRET',
      'NOTIFY_WEBHOOK_SECRET',
      'SMTP_FROM',
      'SMTP_URL',
      'NOTIFY_ALLOW_PRIVATE_WEBHOOKS',
      'NOTIFY_DELIVERY_INTERVAL',
    ])
    expect(problems.join('\n')).not.toContain(secretish)
    expect(problems.join('\n')).not.toContain('canary-host')
    expect(
      problemsOf(() => readNotificationSettings(production, { PUBLIC_BASE_URL: 'http://referrals.example' })),
    ).toHaveLength(1)
  })

  it('needs a link secret when there is no master key', () => {
    const noKey = testConfig()
    expect(problemsOf(() => readNotificationSettings(noKey, {}))).toEqual([
      'DECISION_LINK_SECRET is required when no master key is configured',
    ])
    expect(
      readNotificationSettings(noKey, { DECISION_LINK_SECRET: 'k'.repeat(32) }).decisionLinkSecret,
    ).toEqual(Buffer.from('k'.repeat(32)))
  })

  it('reads the intake reminder policy and scheduling link; bad values are named, not echoed', () => {
    expect(readNotificationSettings(dev, {}).intakeReminders).toEqual({
      policy: { delayMs: 48 * 3_600_000, everyMs: 72 * 3_600_000, maxCount: 2 },
      schedulingUrl: undefined,
    })
    expect(
      readNotificationSettings(dev, {
        INTAKE_REMINDER_DELAY: '24h',
        INTAKE_REMINDER_INTERVAL: '30m',
        INTAKE_REMINDER_MAX_COUNT: '0',
        INTAKE_REMINDER_SCHEDULING_URL: 'https://book.example/{code}',
      }).intakeReminders,
    ).toEqual({
      policy: { delayMs: 86_400_000, everyMs: 1_800_000, maxCount: 0 },
      schedulingUrl: 'https://book.example/{code}',
    })
    const problems = problemsOf(() =>
      readNotificationSettings(production, {
        PUBLIC_BASE_URL: 'https://referrals.example',
        INTAKE_REMINDER_DELAY: 'canary-later',
        INTAKE_REMINDER_MAX_COUNT: '11',
        INTAKE_REMINDER_SCHEDULING_URL: 'http://canary-booking.example',
      }),
    )
    expect(problems.map((p) => p.split(' ')[0])).toEqual([
      'INTAKE_REMINDER_DELAY',
      'INTAKE_REMINDER_MAX_COUNT',
      'INTAKE_REMINDER_SCHEDULING_URL',
    ])
    expect(problems.join('\n')).not.toMatch(/canary/)
  })
})
