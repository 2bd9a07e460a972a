import { hkdfSync } from 'node:crypto'
import { defaultIntakeReminderPolicy, type IntakeReminderPolicy } from '@referrals/core'
import type { HttpSmsOptions, SmtpOptions } from '@referrals/notify'
import type { Config, Env } from '../config.js'
import type { WebhookUrlPolicy } from './webhook-url.js'

/**
 * Notification settings from environment variables, validated at start. Like `loadConfig`, every
 * problem is one line naming the variable and what it should be — never its value (several are
 * secrets).
 */
export interface NotificationSettings {
  /** Where users reach the service; decision links point to `<base>/decision-links`. */
  readonly publicBaseUrl: URL
  readonly decisionLinkSecret: Uint8Array
  /** Signs webhooks of subscribers without their own secret; without it they get no webhooks. */
  readonly webhookSecret: string | undefined
  readonly smtp: SmtpOptions | undefined
  /** An HTTP SMS gateway (`SMS_GATEWAY_URL`, `SMS_GATEWAY_FROM`, `SMS_GATEWAY_TOKEN`): the `sms` channel. */
  readonly smsGateway: HttpSmsOptions | undefined
  readonly webhookPolicy: WebhookUrlPolicy
  readonly schedulerIntervalMs: number
  readonly deliveryIntervalMs: number
  /**
   * Reminders to patients who submitted a referral-program intake and have not booked
   * (`INTAKE_REMINDER_*`); absent: the core's default policy, scheduling link `<base>/r/<code>`.
   */
  readonly intakeReminders?: IntakeReminderSettings
}

export interface IntakeReminderSettings {
  readonly policy: IntakeReminderPolicy
  /** `INTAKE_REMINDER_SCHEDULING_URL`; `{code}` is replaced by the link code. Default `<base>/r/<code>`. */
  readonly schedulingUrl: string | undefined
}

export class NotificationConfigError extends Error {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`invalid notification configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'NotificationConfigError'
    this.problems = problems
  }
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const durationMs = (s: string): number | undefined => {
  const match = /^(\d{1,9})\s*(ms|s|m|h)?$/.exec(s)
  if (match === null) return undefined
  const ms = Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1)
  return ms > 0 ? ms : undefined
}

const isLocalHost = (hostname: string) =>
  hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]'

const SMTP_FROM = /^[^\r\n<>]{0,200}<[^\s@<>]{1,64}@[^\s@<>]{1,255}>$|^[^\s@<>]{1,64}@[^\s@<>]{1,255}$/

const parseSmtpUrl = (
  raw: string,
  from: string,
  production: boolean,
): SmtpOptions | { readonly problem: string } => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return { problem: 'SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…' }
  }
  if (
    (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') ||
    url.hostname === '' ||
    url.pathname.length > 1
  )
    return { problem: 'SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…' }
  const secure = url.protocol === 'smtps:'
  let auth: SmtpOptions['auth']
  try {
    auth =
      url.username === ''
        ? undefined
        : { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
  } catch {
    return { problem: 'SMTP_URL user and password must be percent-encoded' }
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? (secure ? 465 : 587) : Number(url.port),
    secure,
    // In production mail goes over TLS only: implicit (smtps) or STARTTLS required.
    requireTLS: production && !secure && !isLocalHost(url.hostname),
    ...(auth === undefined ? {} : { auth }),
    from,
  }
}

/**
 * Reads `PUBLIC_BASE_URL`, `DECISION_LINK_SECRET`, `NOTIFY_WEBHOOK_SECRET`, `SMTP_URL`,
 * `SMTP_FROM`, `SMS_GATEWAY_URL`, `SMS_GATEWAY_FROM`, `SMS_GATEWAY_TOKEN`,
 * `NOTIFY_ALLOW_PRIVATE_WEBHOOKS`, `NOTIFY_SCHEDULER_INTERVAL`, `NOTIFY_DELIVERY_INTERVAL` and the
 * intake reminder settings `INTAKE_REMINDER_DELAY`, `INTAKE_REMINDER_INTERVAL`,
 * `INTAKE_REMINDER_MAX_COUNT`, `INTAKE_REMINDER_SCHEDULING_URL`; throws `NotificationConfigError` listing every problem.
 */
export const readNotificationSettings = (config: Config, env: Env = process.env): NotificationSettings => {
  const problems: string[] = []
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim()
    return v === undefined || v === '' ? undefined : v
  }
  const production = config.production

  let publicBaseUrl: URL | undefined
  const base = get('PUBLIC_BASE_URL')
  if (base === undefined) {
    if (production) problems.push('PUBLIC_BASE_URL is required when NODE_ENV is production')
    else
      publicBaseUrl = new URL(
        `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`,
      )
  } else {
    try {
      const url = new URL(base)
      const ok =
        (url.protocol === 'https:' ||
          (url.protocol === 'http:' && (!production || isLocalHost(url.hostname)))) &&
        url.username === '' &&
        url.password === '' &&
        url.search === '' &&
        url.hash === ''
      if (ok) publicBaseUrl = url
    } catch {
      publicBaseUrl = undefined
    }
    if (publicBaseUrl === undefined)
      problems.push('PUBLIC_BASE_URL must be an https URL without query (http allowed outside production)')
  }

  let decisionLinkSecret: Uint8Array | undefined
  const linkSecret = get('DECISION_LINK_SECRET')
  if (linkSecret !== undefined) {
    if (Buffer.byteLength(linkSecret, 'utf8') < 32)
      problems.push('DECISION_LINK_SECRET must be at least 32 bytes')
    else decisionLinkSecret = Buffer.from(linkSecret, 'utf8')
  } else if (config.masterKey !== undefined) {
    // A key of its own, derived from the master key: rotating it invalidates open links only.
    decisionLinkSecret = new Uint8Array(
      hkdfSync('sha256', config.masterKey.reveal(), Buffer.alloc(0), 'referrals/decision-links/v1', 32),
    )
  } else {
    problems.push('DECISION_LINK_SECRET is required when no master key is configured')
  }

  const webhookSecret = get('NOTIFY_WEBHOOK_SECRET')
  if (webhookSecret !== undefined && (webhookSecret.length < 16 || webhookSecret.length > 256))
    problems.push('NOTIFY_WEBHOOK_SECRET must be 16 to 256 characters')

  let smtp: SmtpOptions | undefined
  const smtpUrl = get('SMTP_URL')
  const smtpFrom = get('SMTP_FROM')
  if (smtpUrl !== undefined) {
    if (smtpFrom === undefined || !SMTP_FROM.test(smtpFrom))
      problems.push('SMTP_FROM must be an address (or "Name <address>") when SMTP_URL is set')
    const parsed = parseSmtpUrl(smtpUrl, smtpFrom ?? '', production)
    if ('problem' in parsed) problems.push(parsed.problem)
    else smtp = parsed
  }

  let smsGateway: HttpSmsOptions | undefined
  const smsUrl = get('SMS_GATEWAY_URL')
  if (smsUrl !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(smsUrl)
    } catch {
      url = undefined
    }
    const ok =
      url !== undefined &&
      url.username === '' &&
      url.password === '' &&
      (url.protocol === 'https:' || (url.protocol === 'http:' && (!production || isLocalHost(url.hostname))))
    if (!ok)
      problems.push(
        'SMS_GATEWAY_URL must be an https URL without credentials (http allowed outside production)',
      )
    const from = get('SMS_GATEWAY_FROM')
    if (from === undefined || !/^(\+[1-9]\d{6,14}|[A-Za-z0-9 ]{1,11})$/.test(from))
      problems.push(
        'SMS_GATEWAY_FROM must be an E.164 number or an alphanumeric sender id of at most 11 characters',
      )
    const token = get('SMS_GATEWAY_TOKEN')
    if (token !== undefined && (token.length < 8 || token.length > 512 || /[\r\n]/.test(token)))
      problems.push('SMS_GATEWAY_TOKEN must be 8 to 512 characters on one line')
    if (ok && from !== undefined)
      smsGateway = {
        url: smsUrl,
        from,
        ...(token === undefined ? {} : { auth: { kind: 'bearer' as const, token } }),
      }
  }

  const allow = get('NOTIFY_ALLOW_PRIVATE_WEBHOOKS') ?? 'false'
  if (allow !== 'true' && allow !== 'false')
    problems.push('NOTIFY_ALLOW_PRIVATE_WEBHOOKS must be true or false')

  const interval = (name: string, fallback: number): number => {
    const v = get(name)
    if (v === undefined) return fallback
    const ms = durationMs(v)
    if (ms === undefined) problems.push(`${name} must be a duration such as 500ms, 30s or 1m`)
    return ms ?? fallback
  }
  const schedulerIntervalMs = interval('NOTIFY_SCHEDULER_INTERVAL', 30_000)
  const deliveryIntervalMs = interval('NOTIFY_DELIVERY_INTERVAL', 5_000)

  const reminderDelayMs = interval('INTAKE_REMINDER_DELAY', defaultIntakeReminderPolicy.delayMs)
  const reminderEveryMs = interval('INTAKE_REMINDER_INTERVAL', defaultIntakeReminderPolicy.everyMs)
  let reminderMax = defaultIntakeReminderPolicy.maxCount
  const maxRaw = get('INTAKE_REMINDER_MAX_COUNT')
  if (maxRaw !== undefined) {
    if (/^\d{1,2}$/.test(maxRaw) && Number(maxRaw) <= 10) reminderMax = Number(maxRaw)
    else problems.push('INTAKE_REMINDER_MAX_COUNT must be a whole number from 0 (no reminders) to 10')
  }
  const schedulingUrl = get('INTAKE_REMINDER_SCHEDULING_URL')
  if (schedulingUrl !== undefined) {
    let ok = false
    try {
      const url = new URL(schedulingUrl.replaceAll('{code}', 'CODE'))
      ok =
        (url.protocol === 'https:' ||
          (url.protocol === 'http:' && (!production || isLocalHost(url.hostname)))) &&
        url.username === '' &&
        url.password === ''
    } catch {
      ok = false
    }
    if (!ok)
      problems.push(
        'INTAKE_REMINDER_SCHEDULING_URL must be an https URL without credentials (http allowed outside production)',
      )
  }

  if (problems.length > 0 || publicBaseUrl === undefined || decisionLinkSecret === undefined)
    throw new NotificationConfigError(problems)
  return {
    publicBaseUrl,
    decisionLinkSecret,
    webhookSecret,
    smtp,
    smsGateway,
    webhookPolicy: { httpsOnly: production, allowPrivate: allow === 'true' },
    schedulerIntervalMs,
    deliveryIntervalMs,
    intakeReminders: {
      policy: { delayMs: reminderDelayMs, everyMs: reminderEveryMs, maxCount: reminderMax },
      schedulingUrl,
    },
  }
}
