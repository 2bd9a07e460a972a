import type { PracticeId, UserId } from '@referrals/core'
import { SLACK_USER_ID } from './slack.js'
import { TEAMS_USER_ID } from './teams.js'

/**
 * Where and when a practice, or one user, wants practice notifications. A practice's
 * notifications go to the practice's own channels and to each member's channels.
 */
export interface NotificationPreferences {
  readonly channels: {
    readonly email?: string
    readonly webhook?: string
    /** A Slack incoming-webhook URL (the practice's referral channel, or a user's own). */
    readonly slack?: string
    /** A Microsoft Teams incoming-webhook (Workflows) URL: the practice's referral channel, or a user's own. */
    readonly teams?: string
    /** A phone number in E.164 (`+15145550123`) for SMS. */
    readonly sms?: string
  }
  /** Signs this subscriber's webhooks; without it the projector's default secret is used. */
  readonly webhookSecret?: string
  /** A user's Slack member id (`U…`), @-mentioned in the practice channel when they are the preferred provider. */
  readonly slackUserId?: string
  /** A user's Teams id (UPN or Entra object id), @-mentioned in the practice channel when they are the preferred provider. */
  readonly teamsUserId?: string
  /**
   * What chat messages (Slack, Teams) may show. `minimal` (default): referral number, category, urgency
   * and the decision buttons. `full`: also the practice-facing message text (practice names,
   * times; never patient identity).
   */
  readonly chatDetail?: 'minimal' | 'full'
  /** Local times `HH:MM` in an IANA time zone; a period may span midnight (`22:00`–`07:00`). */
  readonly quietHours?: { readonly start: string; readonly end: string; readonly timeZone: string }
}

export type PreferenceOwner =
  | { readonly kind: 'practice'; readonly practiceId: PracticeId }
  | { readonly kind: 'user'; readonly userId: UserId }

export const preferenceOwnerKey = (owner: PreferenceOwner): string =>
  owner.kind === 'practice' ? `practice:${owner.practiceId}` : `user:${owner.userId}`

export interface PreferencesStore {
  readonly get: (owner: PreferenceOwner) => Promise<NotificationPreferences | null>
  readonly put: (owner: PreferenceOwner, preferences: NotificationPreferences) => Promise<void>
  readonly remove: (owner: PreferenceOwner) => Promise<void>
}

export const inMemoryPreferences = (): PreferencesStore => {
  const byOwner = new Map<string, NotificationPreferences>()
  return {
    get: async (owner) => byOwner.get(preferenceOwnerKey(owner)) ?? null,
    put: async (owner, preferences) => {
      byOwner.set(preferenceOwnerKey(owner), preferences)
    },
    remove: async (owner) => {
      byOwner.delete(preferenceOwnerKey(owner))
    },
  }
}

const TIME = /^([01]\d|2[0-3]):([0-5]\d)$/
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/
/** E.164: `+`, country code, up to 15 digits in all. */
export const E164 = /^\+[1-9]\d{6,14}$/

/** Whether `tz` is an IANA time zone this runtime knows. */
export const isTimeZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

const isHttpUrl = (s: string): boolean => {
  try {
    const url = new URL(s)
    return url.protocol === 'https:' || url.protocol === 'http:'
  } catch {
    return false
  }
}

export type PreferencesCheck =
  | { readonly ok: true; readonly value: NotificationPreferences }
  | { readonly ok: false; readonly errors: readonly string[] }

/**
 * Validates preferences from outside (an API body). Errors name the field and the expectation,
 * never the value given. Unknown fields are dropped.
 */
export const parseNotificationPreferences = (input: unknown): PreferencesCheck => {
  const errors: string[] = []
  const obj = (u: unknown): Record<string, unknown> | null =>
    typeof u === 'object' && u !== null && !Array.isArray(u) ? (u as Record<string, unknown>) : null
  const root = obj(input)
  if (root === null) return { ok: false, errors: ['body: expected an object'] }
  const channels = obj(root.channels ?? {})
  if (channels === null) return { ok: false, errors: ['channels: expected an object'] }
  const { email, webhook, slack, teams, sms } = channels
  if (email !== undefined && (typeof email !== 'string' || !EMAIL.test(email)))
    errors.push('channels.email: expected an email address')
  if (webhook !== undefined && (typeof webhook !== 'string' || webhook.length > 2048 || !isHttpUrl(webhook)))
    errors.push('channels.webhook: expected an http(s) URL')
  if (slack !== undefined && (typeof slack !== 'string' || slack.length > 2048 || !isHttpUrl(slack)))
    errors.push('channels.slack: expected an http(s) URL')
  if (teams !== undefined && (typeof teams !== 'string' || teams.length > 2048 || !isHttpUrl(teams)))
    errors.push('channels.teams: expected an http(s) URL')
  if (sms !== undefined && (typeof sms !== 'string' || !E164.test(sms)))
    errors.push('channels.sms: expected an E.164 phone number')
  const secret = root.webhookSecret
  if (secret !== undefined && (typeof secret !== 'string' || secret.length < 16 || secret.length > 256))
    errors.push('webhookSecret: expected 16 to 256 characters')
  const slackUserId = root.slackUserId
  if (slackUserId !== undefined && (typeof slackUserId !== 'string' || !SLACK_USER_ID.test(slackUserId)))
    errors.push('slackUserId: expected a Slack member id')
  const teamsUserId = root.teamsUserId
  if (teamsUserId !== undefined && (typeof teamsUserId !== 'string' || !TEAMS_USER_ID.test(teamsUserId)))
    errors.push('teamsUserId: expected a user principal name or an Entra object id')
  const chatDetail = root.chatDetail
  if (chatDetail !== undefined && chatDetail !== 'minimal' && chatDetail !== 'full')
    errors.push("chatDetail: expected 'minimal' or 'full'")
  let quietHours: NotificationPreferences['quietHours']
  if (root.quietHours !== undefined) {
    const q = obj(root.quietHours)
    if (q === null) errors.push('quietHours: expected an object')
    else {
      const { start, end, timeZone } = q
      if (typeof start !== 'string' || !TIME.test(start)) errors.push('quietHours.start: expected HH:MM')
      if (typeof end !== 'string' || !TIME.test(end)) errors.push('quietHours.end: expected HH:MM')
      if (typeof timeZone !== 'string' || !isTimeZone(timeZone))
        errors.push('quietHours.timeZone: expected an IANA time zone')
      if (errors.length === 0) quietHours = { start, end, timeZone } as NonNullable<typeof quietHours>
    }
  }
  if (errors.length > 0) return { ok: false, errors }
  return {
    ok: true,
    value: {
      channels: {
        ...(email === undefined ? {} : { email: email as string }),
        ...(webhook === undefined ? {} : { webhook: webhook as string }),
        ...(slack === undefined ? {} : { slack: slack as string }),
        ...(teams === undefined ? {} : { teams: teams as string }),
        ...(sms === undefined ? {} : { sms: sms as string }),
      },
      ...(secret === undefined ? {} : { webhookSecret: secret as string }),
      ...(slackUserId === undefined ? {} : { slackUserId: slackUserId as string }),
      ...(teamsUserId === undefined ? {} : { teamsUserId: teamsUserId as string }),
      ...(chatDetail === undefined ? {} : { chatDetail: chatDetail as 'minimal' | 'full' }),
      ...(quietHours === undefined ? {} : { quietHours }),
    },
  }
}

const DAY_MS = 86_400_000
const minutesOf = (hhmm: string): number => {
  const m = TIME.exec(hhmm)
  return m === null ? 0 : Number(m[1]) * 60 + Number(m[2])
}

/** Milliseconds since local midnight at `ms` in `timeZone`. */
const localTimeOfDayMs = (ms: number, timeZone: string): number => {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hourCycle: 'h23',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(ms))
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0)
  return ((part('hour') * 60 + part('minute')) * 60 + part('second')) * 1000 + (((ms % 1000) + 1000) % 1000)
}

/**
 * When a notification due at `atMs` may go out under these quiet hours: `atMs` itself outside the
 * quiet period, else the period's end. Computed on the local wall clock at `atMs`; a daylight-
 * saving change inside the quiet period moves the result by that hour.
 */
export const quietHoursRelease = (
  quietHours: NotificationPreferences['quietHours'] | undefined,
  atMs: number,
): number => {
  if (quietHours === undefined) return atMs
  const start = minutesOf(quietHours.start) * 60_000
  const end = minutesOf(quietHours.end) * 60_000
  if (start === end) return atMs
  const localAt = (ms: number) => localTimeOfDayMs(ms, quietHours.timeZone)
  const quiet = (local: number) =>
    start < end ? local >= start && local < end : local >= start || local < end
  const local = localAt(atMs)
  if (!quiet(local)) return atMs
  // Adding the local-time difference is off by the offset change when a DST switch falls inside
  // the quiet period; correct by how far the candidate's local time is from `end` (within ±12 h),
  // unless `end` itself does not exist that day (the correction would land inside quiet hours).
  const candidate = atMs + ((end - local + DAY_MS) % DAY_MS)
  const drift = ((localAt(candidate) - end + DAY_MS * 1.5) % DAY_MS) - DAY_MS / 2
  const corrected = candidate - drift
  return corrected > atMs && !quiet(localAt(corrected)) ? corrected : candidate
}
