import {
  type Clock,
  createExistingPatientLookup,
  createIntakeConversions,
  createIntakeReminderScheduler,
  type Engine,
  type EventStore,
  INTAKE_CONVERSION_STREAM_PREFIXES,
  type IntakeConversions,
  type IntakeReminder,
  type IntakeReminderScheduler,
  intakeReminderMessage,
  millisOf,
  type PhiCipher,
  type Subscription,
} from '@referrals/core'
import {
  type NewOutboxEntry,
  type Notification,
  type NotificationPreferences,
  type OutboxStore,
  patientSmsDecision,
} from '@referrals/notify'
import type { IntakeReminderSettings } from './settings.js'

/** How patient SMS go out: only when the service texts patients (`NOTIFY_PATIENT_SMS`), outside quiet hours. */
export interface IntakeReminderSms {
  readonly quietHours: NotificationPreferences['quietHours']
}

/**
 * The outbox entries of one reminder: one per consented target whose channel the service runs.
 * An SMS goes only to a number that reads as E.164, held until the end of the quiet hours
 * (`notBeforeMs`), and says what the email says (clinic, location, service category, scheduling
 * link), without a subject.
 */
export const intakeReminderEntries = (
  reminder: IntakeReminder,
  channels: ReadonlySet<string>,
  sms?: { readonly settings: IntakeReminderSms; readonly nowMs: number },
): NewOutboxEntry[] => {
  const message = intakeReminderMessage(reminder.facts)
  const notification: Notification = {
    id: reminder.id,
    eventId: reminder.id,
    kind: 'patient.intake_reminder',
    audience: 'patient',
    subject: message.subject,
    text: message.text,
    // Ids and a counter only: receivers learn nothing about the patient or their care.
    payload: { intakeId: reminder.intakeId, programId: reminder.programId, sequence: reminder.sequence },
  }
  const owner = `patient-${reminder.patientId}`
  const entries: NewOutboxEntry[] = []
  for (const target of reminder.targets) {
    if (!channels.has(target.channel)) continue
    const id = `${reminder.id}:${target.channel}:${owner}`
    if (target.channel === 'email') {
      entries.push({
        notification: { ...notification, id },
        channel: 'email',
        address: { email: target.address },
      })
      continue
    }
    if (sms === undefined) continue
    // The target exists only for an intake that consented to SMS; the number and the hour decide.
    const decision = patientSmsDecision({
      consent: true,
      phone: target.address,
      quietHours: sms.settings.quietHours,
      nowMs: sms.nowMs,
    })
    if (!decision.send) continue
    entries.push({
      notification: { ...notification, id, subject: '' },
      channel: 'sms',
      address: { phone: decision.phone },
      notBeforeMs: decision.atMs,
    })
  }
  return entries
}

export interface IntakeProcessesOptions {
  readonly store: EventStore
  readonly engine: Pick<Engine, 'ids' | 'directory'>
  readonly clock: Clock
  /** The cipher intakes are sealed with (the engine's, over the runtime's patient key store). */
  readonly cipher?: PhiCipher | undefined
  readonly outbox: OutboxStore
  readonly settings: IntakeReminderSettings
  /** Where the link's intake page is: the default scheduling link is `<publicBase>/r/<code>`. */
  readonly publicBase: string
  /** The patient channels reminders may use (those the service delivers). */
  readonly patientChannels: ReadonlySet<string>
  /** With `sms` among `patientChannels`: the patient SMS settings (quiet hours). */
  readonly patientSms?: IntakeReminderSms | undefined
  readonly subscriptionId?: string
  readonly onError?: (error: unknown) => void
}

export interface IntakeProcesses {
  readonly conversions: IntakeConversions
  readonly reminders: IntakeReminderScheduler
  /** Starts the checkpointed conversion subscription (idempotent while it runs). */
  readonly start: () => Subscription
  /** Queues the reminders due now; returns how many outbox entries were offered (repeats are dropped). */
  readonly remind: () => Promise<number>
  readonly stop: () => Promise<void>
}

/**
 * The referral-program processes of the service: the conversion process as a checkpointed
 * subscription over `referral-` and `intake-` streams (`createIntakeConversions`; at-least-once
 * delivery, exactly-once effects), and the intake reminders queued in the notification outbox.
 */
export const createIntakeProcesses = (options: IntakeProcessesOptions): IntakeProcesses => {
  // Incentive rules with `referrer_existing_patient` ask the referral streams (ids only, no PHI).
  const existingPatients = createExistingPatientLookup({ store: options.store })
  const conversions = createIntakeConversions({
    store: options.store,
    ids: options.engine.ids,
    clock: options.clock,
    ...(options.cipher === undefined ? {} : { cipher: options.cipher }),
    referrerIsExistingPatient: existingPatients.isExistingPatient,
  })
  const directory = options.engine.directory
  const template = options.settings.schedulingUrl
  const reminders = createIntakeReminderScheduler({
    store: options.store,
    clock: options.clock,
    ...(options.cipher === undefined ? {} : { cipher: options.cipher }),
    policy: options.settings.policy,
    practiceName: (id) => {
      const p = directory.get(id)
      return p.exists ? p.name : null
    },
    schedulingUrl: ({ code }) =>
      template === undefined
        ? `${options.publicBase}/r/${encodeURIComponent(code ?? '')}`
        : template.replaceAll('{code}', encodeURIComponent(code ?? '')),
  })
  let subscription: Subscription | null = null
  return {
    conversions,
    reminders,
    start: () => {
      if (subscription !== null) return subscription
      const current = options.store.subscribe({
        subscriptionId: options.subscriptionId ?? 'intake-conversions',
        streamPrefixes: INTAKE_CONVERSION_STREAM_PREFIXES,
        handler: async (stored) => {
          await conversions.handle(stored)
        },
        onError: (error) => {
          if (subscription === current) subscription = null
          options.onError?.(error)
        },
      })
      subscription = current
      return current
    },
    remind: async () => {
      await directory.refresh()
      const due = await reminders.due()
      const nowMs = millisOf(options.clock.now())
      const sms = options.patientSms === undefined ? undefined : { settings: options.patientSms, nowMs }
      const entries = due.flatMap((r) => intakeReminderEntries(r, options.patientChannels, sms))
      if (entries.length > 0) await options.outbox.enqueue(entries, nowMs)
      return entries.length
    },
    stop: async () => {
      await subscription?.stop()
      subscription = null
    },
  }
}
