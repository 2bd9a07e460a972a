import { hkdfSync } from 'node:crypto'
import { defaultIntakeReminderPolicy, type IntakeReminderPolicy } from '@referrals/core'
import {
  type HttpSmsOptions,
  isTimeZone,
  type NotificationPreferences,
  type SmppOptions,
  type SmtpOptions,
} from '@referrals/notify'
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
  /** An SMSC over SMPP 3.4 (`SMPP_URL`, `SMPP_SYSTEM_ID`, `SMPP_PASSWORD`, `SMPP_SOURCE_ADDR`): the `sms` channel. */
  readonly smpp: SmppOptions | undefined
  /**
   * An SMPP submit that was sent and never answered (`SMPP_UNCERTAIN`): after its window
   * (`SMPP_UNCERTAIN_WINDOW`, default the receipt timeout) with no receipt, `dead_letter` (default:
   * a person checks) or `resend` (the recipient may get it twice). See the notify README.
   */
  readonly smsUncertain: 'dead_letter' | 'resend'
  /**
   * Patient SMS (`NOTIFY_PATIENT_SMS=true`, needs an `sms` channel): consenting patients' texts,
   * held until the end of `NOTIFY_PATIENT_SMS_QUIET_HOURS` when set.
   */
  readonly patientSms: { readonly quietHours: NotificationPreferences['quietHours'] } | undefined
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

/** An SMS sender: an E.164 number or an alphanumeric sender id of at most 11 characters. */
const SMS_SENDER = /^(\+[1-9]\d{6,14}|[A-Za-z0-9 ]{1,11})$/

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
 * `SMTP_FROM`, `SMS_GATEWAY_URL`, `SMS_GATEWAY_FROM`, `SMS_GATEWAY_TOKEN`, `SMPP_URL`,
 * `SMPP_SYSTEM_ID`, `SMPP_PASSWORD`, `SMPP_SOURCE_ADDR`, `SMPP_RECEIPT_TIMEOUT`, `SMPP_UNCERTAIN_WINDOW`,
 * `SMPP_UNCERTAIN`, `NOTIFY_PATIENT_SMS`,
 * `NOTIFY_PATIENT_SMS_QUIET_HOURS`, `NOTIFY_ALLOW_PRIVATE_WEBHOOKS`, `NOTIFY_SCHEDULER_INTERVAL`,
 * `NOTIFY_DELIVERY_INTERVAL` and the intake reminder settings `INTAKE_REMINDER_DELAY`,
 * `INTAKE_REMINDER_INTERVAL`, `INTAKE_REMINDER_MAX_COUNT`, `INTAKE_REMINDER_SCHEDULING_URL`; throws
 * `NotificationConfigError` listing every problem.
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
    if (from === undefined || !SMS_SENDER.test(from))
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

  let smpp: SmppOptions | undefined
  const smppUrl = get('SMPP_URL')
  if (smppUrl !== undefined) {
    if (smsUrl !== undefined) problems.push('SMPP_URL and SMS_GATEWAY_URL are mutually exclusive: set one')
    let url: URL | undefined
    try {
      url = new URL(smppUrl)
    } catch {
      url = undefined
    }
    const ok =
      url !== undefined &&
      url.hostname !== '' &&
      url.username === '' &&
      url.password === '' &&
      url.pathname.length <= 1 &&
      url.search === '' &&
      (url.protocol === 'ssmpp:' || (url.protocol === 'smpp:' && (!production || isLocalHost(url.hostname))))
    if (!ok)
      problems.push(
        'SMPP_URL must be ssmpp://host[:port] or smpp://host[:port] without credentials (smpp:// only outside production or to localhost)',
      )
    const systemId = get('SMPP_SYSTEM_ID')
    if (systemId === undefined || !/^[\x21-\x7e]{1,15}$/.test(systemId))
      problems.push('SMPP_SYSTEM_ID must be 1 to 15 printable ASCII characters when SMPP_URL is set')
    const password = get('SMPP_PASSWORD')
    if (password === undefined || !/^[\x20-\x7e]{1,8}$/.test(password))
      problems.push('SMPP_PASSWORD must be 1 to 8 printable ASCII characters (SMPP 3.4) when SMPP_URL is set')
    const sourceAddr = get('SMPP_SOURCE_ADDR')
    if (sourceAddr === undefined || !SMS_SENDER.test(sourceAddr))
      problems.push(
        'SMPP_SOURCE_ADDR must be an E.164 number or an alphanumeric sender id of at most 11 characters',
      )
    const receiptTimeout = get('SMPP_RECEIPT_TIMEOUT')
    const receiptTimeoutMs = receiptTimeout === undefined ? undefined : durationMs(receiptTimeout)
    if (receiptTimeout !== undefined && receiptTimeoutMs === undefined)
      problems.push('SMPP_RECEIPT_TIMEOUT must be a duration such as 30s, 10m or 1h')
    const uncertainWindow = get('SMPP_UNCERTAIN_WINDOW')
    const uncertainWindowMs = uncertainWindow === undefined ? undefined : durationMs(uncertainWindow)
    if (uncertainWindow !== undefined && uncertainWindowMs === undefined)
      problems.push('SMPP_UNCERTAIN_WINDOW must be a duration such as 30s, 10m or 1h')
    if (ok && systemId !== undefined && password !== undefined && sourceAddr !== undefined)
      smpp = {
        url: smppUrl,
        systemId,
        password,
        sourceAddr,
        ...(receiptTimeoutMs === undefined ? {} : { receiptTimeoutMs }),
        ...(uncertainWindowMs === undefined ? {} : { uncertainWindowMs }),
      }
  }
  const smsUncertain = get('SMPP_UNCERTAIN') ?? 'dead_letter'
  if (smsUncertain !== 'dead_letter' && smsUncertain !== 'resend')
    problems.push('SMPP_UNCERTAIN must be dead_letter or resend')

  let patientSms: NotificationSettings['patientSms']
  const patientSmsFlag = get('NOTIFY_PATIENT_SMS') ?? 'false'
  const quiet = get('NOTIFY_PATIENT_SMS_QUIET_HOURS')
  if (patientSmsFlag !== 'true' && patientSmsFlag !== 'false')
    problems.push('NOTIFY_PATIENT_SMS must be true or false')
  let quietHours: NotificationPreferences['quietHours']
  if (quiet !== undefined) {
    const m = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)\s+(\S+)$/.exec(quiet)
    if (m === null || !isTimeZone(m[5] ?? ''))
      problems.push(
        'NOTIFY_PATIENT_SMS_QUIET_HOURS must be HH:MM-HH:MM and an IANA time zone, e.g. 21:00-08:00 America/Toronto',
      )
    else quietHours = { start: `${m[1]}:${m[2]}`, end: `${m[3]}:${m[4]}`, timeZone: m[5] ?? '' }
    if (patientSmsFlag !== 'true')
      problems.push('NOTIFY_PATIENT_SMS_QUIET_HOURS has no effect unless NOTIFY_PATIENT_SMS is true')
  }
  if (patientSmsFlag === 'true') {
    if (smsUrl === undefined && smppUrl === undefined)
      problems.push('NOTIFY_PATIENT_SMS needs an SMS channel: set SMPP_URL or SMS_GATEWAY_URL')
    patientSms = { quietHours }
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
    smpp,
    smsUncertain: smsUncertain === 'resend' ? 'resend' : 'dead_letter',
    patientSms,
    webhookPolicy: { httpsOnly: production, allowPrivate: allow === 'true' },
    schedulerIntervalMs,
    deliveryIntervalMs,
    intakeReminders: {
      policy: { delayMs: reminderDelayMs, everyMs: reminderEveryMs, maxCount: reminderMax },
      schedulingUrl,
    },
  }
}
