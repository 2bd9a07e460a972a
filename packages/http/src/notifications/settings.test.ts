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

  it('configures an SMSC over SMPP (ssmpp in production, receipt timeout) and names bad settings without their values', () => {
    expect(readNotificationSettings(dev, {}).smpp).toBeUndefined()
    const s = readNotificationSettings(production, {
      PUBLIC_BASE_URL: 'https://referrals.example',
      SMPP_URL: 'ssmpp://smsc.example:3550',
      SMPP_SYSTEM_ID: 'referrals',
      SMPP_PASSWORD: 'pw-0123',
      SMPP_SOURCE_ADDR: '+15145550100',
      SMPP_RECEIPT_TIMEOUT: '10m',
      SMPP_UNCERTAIN_WINDOW: '1h',
      SMPP_UNCERTAIN: 'resend',
    })
    expect(s.smpp).toEqual({
      url: 'ssmpp://smsc.example:3550',
      systemId: 'referrals',
      password: 'pw-0123',
      sourceAddr: '+15145550100',
      receiptTimeoutMs: 600_000,
      uncertainWindowMs: 3_600_000,
    })
    expect(s.smsUncertain).toBe('resend')
    expect(readNotificationSettings(dev, {}).smsUncertain).toBe('dead_letter')
    expect(s.smsGateway).toBeUndefined()
    // Plain smpp:// is for development and localhost.
    expect(
      readNotificationSettings(dev, {
        SMPP_URL: 'smpp://smsc.example',
        SMPP_SYSTEM_ID: 'referrals',
        SMPP_PASSWORD: 'pw',
        SMPP_SOURCE_ADDR: 'Referrals',
      }).smpp,
    ).toEqual({ url: 'smpp://smsc.example', systemId: 'referrals', password: 'pw', sourceAddr: 'Referrals' })
    const canary = 'canarypw9'
    const problems = problemsOf(() =>
      readNotificationSettings(production, {
        PUBLIC_BASE_URL: 'https://referrals.example',
        SMPP_URL: `smpp://user:${canary}@smsc.example`,
        SMPP_SYSTEM_ID: 'a-system-id-longer-than-15',
        SMPP_PASSWORD: canary,
        SMPP_SOURCE_ADDR: 'a sender id far too long',
        SMPP_RECEIPT_TIMEOUT: 'never',
        SMPP_UNCERTAIN_WINDOW: 'soon',
        SMPP_UNCERTAIN: 'maybe',
      }),
    )
    expect(problems.map((p) => p.split(' ')[0])).toEqual([
      'SMPP_URL',
      'SMPP_SYSTEM_ID',
      'SMPP_PASSWORD',
      'SMPP_SOURCE_ADDR',
      'SMPP_RECEIPT_TIMEOUT',
      'SMPP_UNCERTAIN_WINDOW',
      'SMPP_UNCERTAIN',
    ])
    expect(problems.join('\n')).not.toContain(canary)
    expect(problemsOf(() => readNotificationSettings(dev, { SMPP_URL: 'smpp://smsc.example' }))).toEqual([
      'SMPP_SYSTEM_ID must be 1 to 15 printable ASCII characters when SMPP_URL is set',
      'SMPP_PASSWORD must be 1 to 8 printable ASCII characters (SMPP 3.4) when SMPP_URL is set',
      'SMPP_SOURCE_ADDR must be an E.164 number or an alphanumeric sender id of at most 11 characters',
    ])
    expect(
      problemsOf(() =>
        readNotificationSettings(dev, {
          SMPP_URL: 'smpp://smsc.example',
          SMPP_SYSTEM_ID: 'referrals',
          SMPP_PASSWORD: 'pw',
          SMPP_SOURCE_ADDR: 'Referrals',
          SMS_GATEWAY_URL: 'https://sms.example/v1',
          SMS_GATEWAY_FROM: 'Referrals',
        }),
      ),
    ).toEqual(['SMPP_URL and SMS_GATEWAY_URL are mutually exclusive: set one'])
  })

  it('enables patient SMS only when asked, with an SMS channel, and parses the quiet hours', () => {
    const smppEnv = {
      SMPP_URL: 'smpp://127.0.0.1:2775',
      SMPP_SYSTEM_ID: 'referrals',
      SMPP_PASSWORD: 'pw',
      SMPP_SOURCE_ADDR: 'Referrals',
    }
    expect(readNotificationSettings(dev, smppEnv).patientSms).toBeUndefined()
    expect(readNotificationSettings(dev, { ...smppEnv, NOTIFY_PATIENT_SMS: 'true' }).patientSms).toEqual({
      quietHours: undefined,
    })
    expect(
      readNotificationSettings(dev, {
        ...smppEnv,
        NOTIFY_PATIENT_SMS: 'true',
        NOTIFY_PATIENT_SMS_QUIET_HOURS: '21:00-08:00 America/Toronto',
      }).patientSms,
    ).toEqual({ quietHours: { start: '21:00', end: '08:00', timeZone: 'America/Toronto' } })
    expect(problemsOf(() => readNotificationSettings(dev, { NOTIFY_PATIENT_SMS: 'true' }))).toEqual([
      'NOTIFY_PATIENT_SMS needs an SMS channel: set SMPP_URL or SMS_GATEWAY_URL',
    ])
    expect(
      problemsOf(() =>
        readNotificationSettings(dev, {
          ...smppEnv,
          NOTIFY_PATIENT_SMS: 'yes',
          NOTIFY_PATIENT_SMS_QUIET_HOURS: '25:00-08:00 Mars/Olympus',
        }),
      ).map((p) => p.split(' ')[0]),
    ).toEqual(['NOTIFY_PATIENT_SMS', 'NOTIFY_PATIENT_SMS_QUIET_HOURS', 'NOTIFY_PATIENT_SMS_QUIET_HOURS'])
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
