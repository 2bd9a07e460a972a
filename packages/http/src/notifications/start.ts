import {
  type Clock,
  createDeadlineScheduler,
  defaultIntakeReminderPolicy,
  type Engine,
  type EventStore,
  millisOf,
  type PatientKeyStore,
  type ReferralResponsePolicy,
} from '@referrals/core'
import { createAesGcmPhiCipher } from '@referrals/crypto'
import {
  type Channel,
  createDecisionLinks,
  createOutboxProjector,
  createPostgresOutbox,
  createPostgresPreferences,
  createPostgresUsedLinks,
  type DecisionLinks,
  defaultRetryPolicy,
  deliverDue,
  httpSmsChannel,
  inMemoryOutbox,
  inMemoryPreferences,
  inMemoryUsedLinks,
  type OutboxStore,
  type PreferencesStore,
  type RetryPolicy,
  runScheduler,
  slackChannel,
  smppChannel,
  smtpChannel,
  teamsChannel,
  webhookChannel,
} from '@referrals/notify'
import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import type { Config, Env } from '../config.js'
import { safeErrorLogFields } from '../problem.js'
import { createIntakeProcesses, type IntakeProcesses } from './intakes.js'
import { registerNotificationRoutes } from './routes.js'
import { type NotificationSettings, readNotificationSettings } from './settings.js'
import { guardUrlChannel, guardWebhookChannel, type ResolveHost } from './webhook-url.js'

const USED_LINK_PURGE_INTERVAL_MS = 3_600_000

/** What notifications need from the service runtime (`Runtime` from `server.ts` fits). */
export interface NotificationRuntime {
  readonly config: Config
  readonly store: EventStore
  readonly engine: Engine
  /** The runtime's PostgreSQL pool, when it has one: outbox, preferences and used links go there. */
  readonly pool?: pg.Pool | undefined
  /** The patient key store: intakes are read with the engine's cipher over it (referral programs). */
  readonly keys?: PatientKeyStore | undefined
}

/** Where loop failures are reported: error class and code only, never a message (it may hold values). */
export interface NotificationLog {
  readonly warn: (fields: Record<string, unknown>, message: string) => void
}

export interface StartNotificationsOptions {
  /** Default: the engine's clock. Deadlines, delivery times and link expiry all read it. */
  readonly clock?: Clock
  /** Environment to read the settings from (default `process.env`). */
  readonly env?: Env
  /** Settings instead of reading the environment. */
  readonly settings?: NotificationSettings
  /** Must be the engine's response policy (default: the core's default policy). */
  readonly responsePolicy?: ReferralResponsePolicy
  readonly schedulerIntervalMs?: number
  readonly deliveryIntervalMs?: number
  /** Wait before restarting the outbox projector after a failed event (default 30 s). */
  readonly projectorRestartMs?: number
  /** Interval of the intake reminder loop (default: the scheduler interval). */
  readonly intakeReminderIntervalMs?: number
  readonly retryPolicy?: RetryPolicy
  /** PostgreSQL schema of the notification tables (default `notify`). */
  readonly schema?: string
  readonly log?: NotificationLog
  /** Host name resolution for the webhook address check (tests). */
  readonly resolveHost?: ResolveHost
}

export interface Notifications {
  /** Stops the loops and the projector (running ticks finish first), closes the SMTP transport and the SMPP session. */
  readonly stop: () => Promise<void>
  /** The notification routes on the same stores: pass to `buildApp({ registerRoutes })`. */
  readonly registerRoutes: (app: FastifyInstance) => Promise<void>
  readonly outbox: OutboxStore
  readonly preferences: PreferencesStore
  readonly links: DecisionLinks
  readonly settings: NotificationSettings
  /** Referral programs: the intake conversion process and the intake reminders. */
  readonly intakes: IntakeProcesses
}

/**
 * Starts notifications on a runtime: the deadline scheduler loop (reminders and expiries), the
 * outbox projector (a checkpointed subscription turning committed events into deliveries) and the
 * delivery loop over the webhook, Slack and Teams channels (always; all behind the webhook
 * address policy), email (when `SMTP_URL` is set) and SMS through an SMSC over SMPP (when `SMPP_URL` is set)
 * or an HTTP gateway (when `SMS_GATEWAY_URL` is set): practices' and users' `channels.sms`, and
 * consenting patients' phones outside quiet hours when `NOTIFY_PATIENT_SMS` is true. With a
 * PostgreSQL pool the outbox, preferences and used links are tables in schema `notify`, shared by
 * every process; otherwise they are in memory. Settings are read from the environment (see
 * `readNotificationSettings`); a bad setting throws `NotificationConfigError` before anything starts.
 */
export const startNotifications = async (
  runtime: NotificationRuntime,
  options: StartNotificationsOptions = {},
): Promise<Notifications> => {
  const settings = options.settings ?? readNotificationSettings(runtime.config, options.env)
  const clock = options.clock ?? runtime.engine.clock
  const nowMs = () => millisOf(clock.now())
  const log = options.log
  const report = (where: string) => (error: unknown) =>
    log?.warn({ component: `notifications.${where}`, ...safeErrorLogFields(error) }, `${where} failed`)

  const pool = runtime.pool
  const schema = options.schema === undefined ? {} : { schema: options.schema }
  const outbox = pool === undefined ? inMemoryOutbox() : await createPostgresOutbox({ pool, ...schema })
  const preferences =
    pool === undefined ? inMemoryPreferences() : await createPostgresPreferences({ pool, ...schema })
  const usedStore =
    pool === undefined ? inMemoryUsedLinks() : await createPostgresUsedLinks({ pool, ...schema })
  const links = createDecisionLinks({ secret: settings.decisionLinkSecret, clock, usedStore })

  const basePath = settings.publicBaseUrl.pathname.replace(/\/+$/, '')
  const baseUrl = `${settings.publicBaseUrl.origin}${basePath}/decision-links`

  let stopped = false
  let restartTimer: NodeJS.Timeout | undefined
  const projector = createOutboxProjector({
    store: runtime.store,
    engine: runtime.engine,
    outbox,
    preferences,
    clock,
    ...(settings.webhookSecret === undefined ? {} : { webhookSecret: settings.webhookSecret }),
    decisionLinks: { links, baseUrl },
    ...(settings.patientSms === undefined ? {} : { patientSms: settings.patientSms }),
    onError: (error) => {
      report('projector')(error)
      // The subscription stopped before the failed event; try again later from there.
      if (!stopped)
        restartTimer = setTimeout(() => {
          if (!stopped) projector.start()
        }, options.projectorRestartMs ?? 30_000)
    },
  })

  const smtp = settings.smtp === undefined ? undefined : smtpChannel(settings.smtp)
  const webhook = guardWebhookChannel(
    webhookChannel({ nowSeconds: () => Math.floor(nowMs() / 1000) }),
    settings.webhookPolicy,
    ...(options.resolveHost === undefined ? [] : [options.resolveHost]),
  )
  // Slack and Teams incoming webhooks are URLs from the preferences too: the same address policy applies.
  const slack = guardUrlChannel(
    slackChannel(),
    (a) => a.webhookUrl,
    settings.webhookPolicy,
    ...(options.resolveHost === undefined ? [] : [options.resolveHost]),
  )
  const teams = guardUrlChannel(
    teamsChannel(),
    (a) => a.webhookUrl,
    settings.webhookPolicy,
    ...(options.resolveHost === undefined ? [] : [options.resolveHost]),
  )
  const channels = new Map<string, Channel<never>>([
    ['webhook', webhook],
    ['slack', slack as Channel<never>],
    ['teams', teams as Channel<never>],
  ])
  if (smtp !== undefined) channels.set('email', smtp)
  if (settings.smsGateway !== undefined)
    channels.set('sms', httpSmsChannel(settings.smsGateway) as Channel<never>)
  const smpp = settings.smpp === undefined ? undefined : smppChannel(settings.smpp)
  if (smpp !== undefined) channels.set('sms', smpp as Channel<never>)
  // Delivery receipts are kept in the outbox; the delivery loop settles the awaiting messages.
  smpp?.onReceipt((receipt) => {
    outbox.recordReceipt('sms', receipt.messageId, receipt.stat, nowMs()).catch(report('receipts'))
  })

  // Referral programs: conversions follow referrals of intakes; reminders go through this outbox.
  let intakeRestartTimer: NodeJS.Timeout | undefined
  const intakes: IntakeProcesses = createIntakeProcesses({
    store: runtime.store,
    engine: runtime.engine,
    clock,
    cipher: runtime.keys === undefined ? undefined : createAesGcmPhiCipher({ keys: runtime.keys }),
    outbox,
    settings: settings.intakeReminders ?? {
      policy: defaultIntakeReminderPolicy,
      schedulingUrl: undefined,
    },
    publicBase: `${settings.publicBaseUrl.origin}${basePath}`,
    // Patients are reached as referral notifications reach them: by email, and by SMS when
    // NOTIFY_PATIENT_SMS is on and an SMS channel runs (outside the quiet hours).
    patientChannels: new Set([
      ...(smtp === undefined ? [] : ['email']),
      ...(settings.patientSms !== undefined && channels.has('sms') ? ['sms'] : []),
    ]),
    patientSms: settings.patientSms,
    onError: (error) => {
      report('intake-conversions')(error)
      if (!stopped)
        intakeRestartTimer = setTimeout(() => {
          if (!stopped) intakes.start()
        }, options.projectorRestartMs ?? 30_000)
    },
  })

  const scheduler = createDeadlineScheduler(runtime.engine, {
    clock,
    ...(options.responsePolicy === undefined ? {} : { policy: options.responsePolicy }),
  })
  const controller = new AbortController()
  const { signal } = controller

  projector.start()
  intakes.start()
  const loops = [
    runScheduler({
      intervalMs:
        options.intakeReminderIntervalMs ?? options.schedulerIntervalMs ?? settings.schedulerIntervalMs,
      signal,
      onError: report('intake-reminders'),
      tick: () => intakes.remind(),
    }),
    runScheduler({
      intervalMs: options.schedulerIntervalMs ?? settings.schedulerIntervalMs,
      signal,
      onError: report('deadlines'),
      tick: async () => {
        const result = await scheduler.tick()
        for (const failure of result.failures)
          log?.warn(
            {
              component: 'notifications.deadlines',
              deadlineId: failure.deadlineId,
              ...codeOf(failure.error),
            },
            'deadline command failed',
          )
        return result
      },
    }),
    runScheduler({
      intervalMs: options.deliveryIntervalMs ?? settings.deliveryIntervalMs,
      signal,
      onError: report('delivery'),
      tick: () =>
        deliverDue({
          outbox,
          channels,
          nowMs: nowMs(),
          policy: { ...(options.retryPolicy ?? defaultRetryPolicy), uncertain: settings.smsUncertain },
        }),
    }),
    // Used-link nonces are needed only until their link expires.
    runScheduler({
      intervalMs: USED_LINK_PURGE_INTERVAL_MS,
      signal,
      onError: report('used-link purge'),
      tick: async () => {
        await usedStore.purgeExpired(nowMs())
      },
    }),
  ]

  return {
    stop: async () => {
      if (stopped) return
      stopped = true
      clearTimeout(restartTimer)
      clearTimeout(intakeRestartTimer)
      controller.abort()
      await Promise.all(loops)
      await projector.stop()
      await intakes.stop()
      smtp?.close()
      await smpp?.close()
    },
    registerRoutes: registerNotificationRoutes({
      engine: runtime.engine,
      outbox,
      preferences,
      links,
      webhookPolicy: settings.webhookPolicy,
      basePath,
    }),
    outbox,
    preferences,
    links,
    settings,
    intakes,
  }
}

const codeOf = (error: unknown): Record<string, unknown> => {
  const e = error as { readonly code?: unknown; readonly _tag?: unknown }
  return {
    ...(typeof e.code === 'string' ? { errorCode: e.code } : {}),
    ...(typeof e._tag === 'string' ? { errorTag: e._tag } : {}),
  }
}
