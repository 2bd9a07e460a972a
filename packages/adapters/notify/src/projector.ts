import {
  type Clock,
  decodeStored,
  deriveNotifications,
  type Engine,
  type EventStore,
  isRedactedPhi,
  millisOf,
  type NotificationIntent,
  type PracticeId,
  type ReferralEvent,
  type StoredEvent,
  type Subscription,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type { DecisionLinks } from './decision-links.js'
import type { Notification } from './notification.js'
import type { NewOutboxEntry, OutboxStore } from './outbox.js'
import { type NotificationPreferences, type PreferencesStore, quietHoursRelease } from './preferences.js'
import type { SlackAddress } from './slack.js'
import { patientSmsDecision, type SmsAddress, smsNotification } from './sms.js'
import type { TeamsAddress } from './teams.js'
import {
  type PatientNotificationKind,
  type PracticeNotificationKind,
  renderPatientMessage,
  renderPracticeMessage,
} from './templates.js'

export interface OutboxProjectorOptions {
  readonly store: EventStore
  /** Decodes and opens events (`engine.referrals.aggregate`) and names practices (`engine.directory`). */
  readonly engine: Pick<Engine, 'referrals' | 'directory'>
  readonly outbox: OutboxStore
  /** Practice and user channels and quiet hours. */
  readonly preferences: PreferencesStore
  readonly clock: Clock
  /** Signs webhooks of subscribers without their own `webhookSecret`; without it they get no webhooks. */
  readonly webhookSecret?: string
  /** Accept/decline links in new-referral and reminder messages: `<baseUrl>?token=…`. */
  readonly decisionLinks?: { readonly links: DecisionLinks; readonly baseUrl: string }
  /**
   * Patient SMS (off without it): sent only with SMS consent, and held until the end of these
   * quiet hours (patients' local time zone as configured here).
   */
  readonly patientSms?: { readonly quietHours: NotificationPreferences['quietHours'] }
  readonly subscriptionId?: string
  readonly onError?: (error: unknown) => void
}

/** Reminders to practices wait for the end of quiet hours unless urgent or emergent. */
const DEFERRABLE: ReadonlySet<string> = new Set(['recipient.reminder'])

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const formatInstant = (v: unknown): string | undefined =>
  typeof v === 'string' ? `${v.slice(0, 16).replace('T', ' ')} UTC` : undefined

/**
 * The transactional outbox feed: a checkpointed subscription over the referral streams that turns
 * each committed event into notifications (`deriveNotifications`), resolves who receives them
 * (practice and member preferences; a consenting patient's email from the opened `ReferralSent`),
 * renders them and enqueues them. Delivery is at least once: a crash between enqueue and the
 * checkpoint redelivers the event, and `enqueue` drops what is already queued (ids are
 * `<eventId>:<audience>:<kind>:<channel>:<owner>`), so nothing is sent twice.
 */
export const createOutboxProjector = (options: OutboxProjectorOptions) => {
  const aggregate = options.engine.referrals.aggregate
  const directory = options.engine.directory

  const practiceName = (id: PracticeId): string | null => {
    const p = directory.get(id)
    return p.exists ? p.name : null
  }

  const decode = async (stored: StoredEvent): Promise<ReferralEvent> => {
    const decoded = await decodeStored(aggregate, stored)
    // Domain error messages name the rule and the field, never the value.
    if (E.isLeft(decoded)) throw new Error(`outbox projector: ${decoded.left.message}`)
    return decoded.right
  }

  const historyOf = async (stored: StoredEvent): Promise<ReferralEvent[]> => {
    if (stored.version <= 1) return []
    const read = await options.store.readStream(stored.streamId, { maxCount: stored.version - 1 })()
    if (E.isLeft(read)) throw new Error(`outbox projector: ${read.left.message}`)
    const events: ReferralEvent[] = []
    for (const s of read.right) events.push(await decode(s))
    return events
  }

  const decisionUrls = (intent: NotificationIntent): Notification['links'] => {
    const dl = options.decisionLinks
    const deliveryNo = intent.payload.deliveryNo
    if (
      dl === undefined ||
      intent.practiceId === undefined ||
      typeof deliveryNo !== 'number' ||
      (intent.kind !== 'recipient.new_referral' && intent.kind !== 'recipient.reminder')
    )
      return undefined
    const url = (action: 'accept' | 'decline') =>
      `${dl.baseUrl}?token=${dl.links.sign({
        referralId: intent.referralId,
        practiceId: intent.practiceId as PracticeId,
        action,
        deliveryNo,
      })}`
    return { accept: url('accept'), decline: url('decline') }
  }

  const render = (intent: NotificationIntent): Notification => {
    const p = intent.payload
    const senderPractice = str(p.senderPracticeName) ?? 'The referring practice'
    const recipientPractice = str(p.recipientPracticeName) ?? null
    const appointmentAt = formatInstant(p.appointmentAt)
    const links = intent.audience === 'patient' ? undefined : decisionUrls(intent)
    const message =
      intent.audience === 'patient'
        ? renderPatientMessage(intent.kind as PatientNotificationKind, {
            senderPractice,
            recipientPractice,
            ...(appointmentAt === undefined ? {} : { appointmentAt }),
          })
        : (() => {
            const link =
              links === undefined ? undefined : `Accept: ${links.accept}\nDecline: ${links.decline}`
            const respondBy = formatInstant(p.respondBy)
            return renderPracticeMessage(intent.kind as PracticeNotificationKind, {
              referralRef: intent.referralId,
              senderPractice,
              recipientPractice,
              specialty: str(p.specialtyId) ?? '',
              urgency: str(p.urgency) ?? intent.urgency,
              preferredProvider: p.preferredProvider === true,
              ...(typeof p.returnReason === 'string' ? { returnReason: p.returnReason } : {}),
              ...(appointmentAt === undefined ? {} : { appointmentAt }),
              ...(respondBy === undefined ? {} : { respondBy }),
              ...(link === undefined ? {} : { link }),
            })
          })()
    return {
      id: intent.id,
      eventId: intent.eventId,
      kind: intent.kind,
      audience: intent.audience,
      subject: message.subject,
      text: message.text,
      payload: p,
      ...(links === undefined ? {} : { links }),
    }
  }

  const withTarget = (n: Notification, channel: string, owner: string): Notification => ({
    ...n,
    id: `${n.id}:${channel}:${owner}`,
  })

  const practiceEntries = async (
    intent: NotificationIntent,
    notification: Notification,
    nowMs: number,
  ): Promise<NewOutboxEntry[]> => {
    if (intent.practiceId === undefined) return []
    const practice = directory.get(intent.practiceId)
    const owners: {
      readonly key: string
      readonly prefs: NotificationPreferences | null
    }[] = [
      {
        key: `practice-${intent.practiceId}`,
        prefs: await options.preferences.get({ kind: 'practice', practiceId: intent.practiceId }),
      },
    ]
    for (const member of practice.exists ? practice.members : []) {
      owners.push({
        key: `user-${member.userId}`,
        prefs: await options.preferences.get({ kind: 'user', userId: member.userId }),
      })
    }
    // The preferred provider (a direct referral) is @-mentioned in chat by the members' ids.
    const mentionable =
      (intent.kind === 'recipient.new_referral' || intent.kind === 'recipient.reminder') &&
      notification.payload.preferredProvider === true
    const idsOf = (pick: (p: NotificationPreferences) => string | undefined): string[] =>
      mentionable
        ? owners.flatMap((o) => {
            const id = o.prefs === null ? undefined : pick(o.prefs)
            return id === undefined ? [] : [id]
          })
        : []
    const mentions = idsOf((p) => p.slackUserId)
    const teamsMentions = idsOf((p) => p.teamsUserId)
    const practiceDetail = owners[0]?.prefs?.chatDetail
    const entries: NewOutboxEntry[] = []
    for (const { key, prefs } of owners) {
      if (prefs === null) continue
      const notBeforeMs =
        DEFERRABLE.has(intent.kind) && intent.urgency === 'routine'
          ? quietHoursRelease(prefs.quietHours, nowMs)
          : nowMs
      if (prefs.channels.email !== undefined) {
        entries.push({
          notification: withTarget(notification, 'email', key),
          channel: 'email',
          address: { email: prefs.channels.email },
          notBeforeMs,
        })
      }
      const secret = prefs.webhookSecret ?? options.webhookSecret
      if (prefs.channels.webhook !== undefined && secret !== undefined) {
        entries.push({
          notification: withTarget(notification, 'webhook', key),
          channel: 'webhook',
          address: { url: prefs.channels.webhook, secret },
          notBeforeMs,
        })
      }
      // Chat (Slack, Teams): a member's own channel mentions only that member; the practice
      // channel mentions every member who set an id, with the practice's detail setting.
      const own = key.startsWith('user-')
      const chats = [
        ['slack', prefs.channels.slack, mentions, prefs.slackUserId],
        ['teams', prefs.channels.teams, teamsMentions, prefs.teamsUserId],
      ] as const
      for (const [channel, webhookUrl, all, ownId] of chats) {
        if (webhookUrl === undefined) continue
        const address: SlackAddress & TeamsAddress = {
          webhookUrl,
          mentions: own ? all.filter((m) => m === ownId) : all,
          detail: (own ? prefs.chatDetail : practiceDetail) ?? 'minimal',
        }
        entries.push({ notification: withTarget(notification, channel, key), channel, address, notBeforeMs })
      }
      if (prefs.channels.sms !== undefined) {
        const address: SmsAddress = { phone: prefs.channels.sms }
        entries.push({
          notification: withTarget(smsNotification(notification), 'sms', key),
          channel: 'sms',
          address,
          notBeforeMs,
        })
      }
    }
    return entries
  }

  /** Patients get email, and SMS when `patientSms` is configured; phone consent is carried but not used. */
  const patientEntries = (
    intent: NotificationIntent,
    notification: Notification,
    history: readonly ReferralEvent[],
    event: ReferralEvent,
    nowMs: number,
  ): NewOutboxEntry[] => {
    const sent = event.type === 'ReferralSent' ? event : history.find((e) => e.type === 'ReferralSent')
    if (sent?.type !== 'ReferralSent' || isRedactedPhi(sent.data.phi)) return []
    const patient = sent.data.phi.patient
    const owner = `patient-${intent.patientId ?? ''}`
    const entries: NewOutboxEntry[] = []
    if (intent.patientChannels?.includes('email') && patient.email !== undefined) {
      entries.push({
        notification: withTarget(notification, 'email', owner),
        channel: 'email',
        address: { email: patient.email },
      })
    }
    if (options.patientSms !== undefined) {
      const decision = patientSmsDecision({
        consent: intent.patientChannels?.includes('sms') === true,
        phone: patient.phone,
        quietHours: options.patientSms.quietHours,
        nowMs,
      })
      if (decision.send) {
        const address: SmsAddress = { phone: decision.phone }
        entries.push({
          notification: withTarget(smsNotification(notification), 'sms', owner),
          channel: 'sms',
          address,
          notBeforeMs: decision.atMs,
        })
      }
    }
    return entries
  }

  /** Projects one stored event (idempotent: enqueueing the same event again adds nothing). */
  const handle = async (stored: StoredEvent): Promise<number> => {
    if (!stored.streamId.startsWith('referral-')) return 0
    const event = await decode(stored)
    const history = await historyOf(stored)
    await directory.refresh()
    const intents = deriveNotifications(event, stored, { history, practiceName })
    if (intents.length === 0) return 0
    const nowMs = millisOf(options.clock.now())
    const entries: NewOutboxEntry[] = []
    for (const intent of intents) {
      const notification = render(intent)
      entries.push(
        ...(intent.audience === 'patient'
          ? patientEntries(intent, notification, history, event, nowMs)
          : await practiceEntries(intent, notification, nowMs)),
      )
    }
    if (entries.length > 0) await options.outbox.enqueue(entries, nowMs)
    return entries.length
  }

  let subscription: Subscription | null = null
  return {
    handle,
    /**
     * Starts the checkpointed subscription (idempotent while it runs). A failing event stops it
     * (reported to `onError`, the checkpoint stays before that event); `start` again resumes there.
     */
    start: (): Subscription => {
      if (subscription !== null) return subscription
      const current: Subscription = options.store.subscribe({
        subscriptionId: options.subscriptionId ?? 'notify-outbox',
        streamPrefixes: ['referral-'],
        handler: async (stored) => {
          await handle(stored)
        },
        onError: (error) => {
          if (subscription === current) subscription = null
          options.onError?.(error)
        },
      })
      subscription = current
      return current
    },
    stop: async () => {
      await subscription?.stop()
      subscription = null
    },
  }
}

export type OutboxProjector = ReturnType<typeof createOutboxProjector>
