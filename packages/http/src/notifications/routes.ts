import {
  type Actor,
  type CorrelationId,
  type Engine,
  hasPlatformRole,
  isDomainError,
  isMemberOf,
  PracticeId,
  type ReferralCommandPayload,
  type UserId,
  unsafeId,
} from '@referrals/core'
import {
  type DecisionClaims,
  type DecisionLinks,
  type LinkOutcome,
  linkResultStatus,
  type NotificationPreferences,
  type OutboxEntry,
  type OutboxStore,
  type PreferenceOwner,
  type PreferencesStore,
  parseNotificationPreferences,
  renderLinkResultPage,
} from '@referrals/notify'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { nameSchema } from '../openapi/io-ts-schema.js'
import { IntFromQuery, route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'
import { forbidden, notFound } from '../routes/failures.js'
import { checkWebhookUrl, describeWebhookUrlPolicy, type WebhookUrlPolicy } from './webhook-url.js'

export interface NotificationRouteDeps {
  readonly engine: Engine
  readonly outbox: OutboxStore
  readonly preferences: PreferencesStore
  readonly links: DecisionLinks
  readonly webhookPolicy: WebhookUrlPolicy
  /** Path of the public base URL (`''` at the root): where the confirmation form posts. */
  readonly basePath?: string
}

const PracticeParams = t.type({ practiceId: PracticeId })
/**
 * A link token (~250 characters) is longer than Fastify's default limit for a path parameter (100),
 * so the decision-link routes take it as the wildcard segment, which has no such limit.
 */
const TokenParams = t.type({ '*': t.string })
const TokenQuery = t.partial({ token: t.string })
const DeadLetterQuery = t.partial({ limit: IntFromQuery })

/** Where notifications go: email address, signed-webhook URL, Slack and Teams incoming-webhook URLs, E.164 phone number for SMS. */
const ChannelAddresses = t.partial({
  email: t.string,
  webhook: t.string,
  slack: t.string,
  teams: t.string,
  sms: t.string,
})
const ChatDetail = t.keyof({ minimal: null, full: null })
const QuietHours = nameSchema(t.type({ start: t.string, end: t.string, timeZone: t.string }), 'QuietHours')
/** Request body of the preference routes; unknown fields are dropped. */
export const NotificationPreferencesBody = nameSchema(
  t.exact(
    t.partial({
      channels: t.exact(ChannelAddresses),
      /** Signs this subscriber's webhooks (16-256 characters). Omitted: the current one is kept. */
      webhookSecret: t.string,
      /** A Slack member id (`U…`), @-mentioned in the practice channel when this user is the preferred provider. */
      slackUserId: t.string,
      /** A Teams user principal name or Entra object id, @-mentioned like `slackUserId`. */
      teamsUserId: t.string,
      /** What chat (Slack, Teams) may show: `minimal` (default; no practice names) or `full`. */
      chatDetail: ChatDetail,
      quietHours: t.exact(QuietHours),
    }),
  ),
  'NotificationPreferencesRequest',
)

/** What the preference routes answer: the webhook secret is never sent back, only whether one is set. */
export const NotificationPreferencesView = nameSchema(
  t.type({
    channels: ChannelAddresses,
    quietHours: t.union([QuietHours, t.null]),
    webhookSecretSet: t.boolean,
    slackUserId: t.union([t.string, t.null]),
    teamsUserId: t.union([t.string, t.null]),
    chatDetail: ChatDetail,
  }),
  'NotificationPreferences',
)

export const DeadLetterView = nameSchema(
  t.type({
    id: t.string,
    eventId: t.string,
    referralId: t.union([t.string, t.null]),
    kind: t.string,
    audience: t.string,
    channel: t.string,
    /** Whose address it was: the practice's own channel, a member's, or the patient's. */
    target: t.keyof({ practice: null, member: null, patient: null, unknown: null }),
    attempts: t.number,
    lastErrorClass: t.string,
  }),
  'DeadLetter',
)

const preferencesView = (
  prefs: NotificationPreferences | null,
): t.TypeOf<typeof NotificationPreferencesView> => ({
  channels: { ...(prefs?.channels ?? {}) },
  quietHours: prefs?.quietHours === undefined ? null : { ...prefs.quietHours },
  webhookSecretSet: prefs?.webhookSecret !== undefined,
  slackUserId: prefs?.slackUserId ?? null,
  teamsUserId: prefs?.teamsUserId ?? null,
  chatDetail: prefs?.chatDetail ?? 'minimal',
})

/** Failure reasons recorded by the channels, reduced to a class (no addresses, no free text). */
export const errorClassOf = (reason: string): string => {
  if (/^HTTP 5\d\d$/.test(reason)) return 'http_5xx'
  if (/^HTTP 4\d\d$/.test(reason)) return 'http_4xx'
  if (/^SMTP 5\d\d$/.test(reason)) return 'smtp_permanent'
  if (/^SMTP \d{3}$/.test(reason)) return 'smtp_transient'
  switch (reason) {
    case 'timeout':
      return 'timeout'
    case 'connection failed':
      return 'connection'
    case 'blocked address':
      return 'blocked_address'
    case 'unknown channel':
      return 'unknown_channel'
    default:
      return 'other'
  }
}

/** The practice a notification concerns: the sender's for sender and patient messages, else the recipient's. */
const practiceOf = (entry: OutboxEntry): unknown => {
  const p = entry.notification.payload
  return entry.notification.audience === 'recipient' ? p.recipientPracticeId : p.senderPracticeId
}

const targetOf = (id: string): t.TypeOf<typeof DeadLetterView>['target'] => {
  const owner = id.slice(id.lastIndexOf(':') + 1)
  if (owner.startsWith('practice-')) return 'practice'
  if (owner.startsWith('user-')) return 'member'
  if (owner.startsWith('patient-')) return 'patient'
  return 'unknown'
}

const isOwnerOf = (actor: Actor, practiceId: PracticeId): boolean =>
  actor.kind === 'user' && actor.memberships.some((m) => m.practiceId === practiceId && m.role === 'owner')

/** Owners only; non-members do not learn the practice exists. */
const requireOwner = (request: FastifyRequest, practiceId: PracticeId, allowAdmin: boolean): Actor => {
  const actor = requireActor(request)
  if (isOwnerOf(actor, practiceId) || (allowAdmin && hasPlatformRole(actor, 'admin'))) return actor
  if (isMemberOf(actor, practiceId)) throw forbidden()
  throw notFound('Practice')
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** The page a GET on a link shows: it confirms, and the POST acts (mail scanners follow links). */
export const renderConfirmationPage = (action: DecisionClaims['action'], formAction: string): string => {
  const title = action === 'accept' ? 'Accept this referral?' : 'Decline this referral?'
  const message =
    action === 'accept'
      ? 'Confirm to accept the referral. Your office will then contact the patient.'
      : 'Confirm to decline the referral (reason: other). To give a more specific reason, decline it from the referral list instead.'
  const button = action === 'accept' ? 'Accept referral' : 'Decline referral'
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${title}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem">
<h1>${title}</h1>
<p>${message}</p>
<form method="post" action="${escapeHtml(formAction)}"><button type="submit">${button}</button></form>
</body></html>
`
}

const sendHtml = (reply: FastifyReply, status: number, html: string) =>
  reply.code(status).type('text/html; charset=utf-8').send(html)

const sendOutcome = (reply: FastifyReply, outcome: LinkOutcome) =>
  sendHtml(reply, linkResultStatus(outcome), renderLinkResultPage(outcome))

/** The acting identity of a decision link: a staff member of the link's practice, for that practice only. */
export const decisionLinkActor = (practiceId: PracticeId): Actor => ({
  kind: 'user',
  userId: unsafeId<UserId>('decision-link'),
  platformRoles: [],
  memberships: [{ practiceId, role: 'staff' }],
})

/**
 * Notification routes: dead letters and preferences (authenticated), and the public decision-link
 * pages. Register with `buildApp({ registerRoutes })` next to the resource routes.
 */
export const registerNotificationRoutes =
  (deps: NotificationRouteDeps) =>
  async (app: FastifyInstance): Promise<void> => {
    const { engine, outbox, preferences, links, webhookPolicy } = deps
    const basePath = (deps.basePath ?? '').replace(/\/+$/, '')

    route(app, {
      method: 'GET',
      url: '/practices/:practiceId/notifications/dead-letters',
      operationId: 'listDeadLetters',
      tags: ['notifications'],
      summary: 'Notifications for this practice that could not be delivered (owners and platform admins)',
      description:
        'Ids, kind, channel, attempts and the class of the last error only: no addresses, no message text.',
      params: PracticeParams,
      query: DeadLetterQuery,
      response: nameSchema(t.type({ items: t.array(DeadLetterView) }), 'DeadLetterPage'),
      handler: async ({ params, query }, request) => {
        requireOwner(request, params.practiceId, true)
        const limit = query.limit ?? 100
        if (limit < 1 || limit > 500)
          throw new ProblemError(
            httpProblem('validation_failed', 'The request query is invalid.', {
              errors: [{ path: 'query.limit', expected: 'an integer from 1 to 500' }],
            }),
          )
        const dead = await outbox.list({ status: 'dead_letter' })
        const items = dead
          .filter((e) => practiceOf(e) === params.practiceId)
          .slice(0, limit)
          .map((e) => ({
            id: e.notification.id,
            eventId: e.notification.eventId,
            referralId:
              typeof e.notification.payload.referralId === 'string'
                ? e.notification.payload.referralId
                : null,
            kind: e.notification.kind,
            audience: e.notification.audience,
            channel: e.channel,
            target: targetOf(e.notification.id),
            attempts: e.state.attempts,
            lastErrorClass: e.state.status === 'dead_letter' ? errorClassOf(e.state.lastError) : 'other',
          }))
        return { items }
      },
    })

    /** Validates a body into preferences; errors name the field and the expectation, never the value. */
    const preferencesFrom = async (
      body: t.TypeOf<typeof NotificationPreferencesBody>,
      owner: PreferenceOwner,
    ): Promise<NotificationPreferences> => {
      const parsed = parseNotificationPreferences(body)
      const errors = parsed.ok
        ? []
        : parsed.errors.map((e) => {
            const at = e.indexOf(': ')
            return { path: `body.${e.slice(0, at)}`, expected: e.slice(at + 2).replace(/^expected /, '') }
          })
      // Every URL the service will call (webhook, Slack, Teams) must pass the address policy.
      for (const name of ['webhook', 'slack', 'teams'] as const) {
        const url = body.channels?.[name]
        const path = `body.channels.${name}`
        if (
          url !== undefined &&
          !errors.some((e) => e.path === path) &&
          !checkWebhookUrl(url, webhookPolicy).ok
        )
          errors.push({ path, expected: describeWebhookUrlPolicy(webhookPolicy) })
      }
      if (!parsed.ok || errors.length > 0)
        throw new ProblemError(httpProblem('validation_failed', 'The request body is invalid.', { errors }))
      const value = parsed.value
      if (value.webhookSecret !== undefined) return value
      const current = await preferences.get(owner)
      return current?.webhookSecret === undefined ? value : { ...value, webhookSecret: current.webhookSecret }
    }

    const preferenceRoutes = (
      url: string,
      operation: string,
      who: string,
      ownerOf: (request: FastifyRequest, params: unknown) => PreferenceOwner,
      params: t.Mixed | undefined,
    ) => {
      route(app, {
        method: 'GET',
        url,
        operationId: `get${operation}`,
        tags: ['notifications'],
        description: `The channels (email, webhook) and quiet hours of ${who}; whether a webhook secret is set, never the secret.`,
        summary: `Notification channels and quiet hours (${who})`,
        ...(params === undefined ? {} : { params }),
        response: NotificationPreferencesView,
        handler: async (input, request) =>
          preferencesView(await preferences.get(ownerOf(request, (input as { params: unknown }).params))),
      })
      route(app, {
        method: 'PUT',
        url,
        operationId: `put${operation}`,
        tags: ['notifications'],
        summary: `Set notification channels and quiet hours (${who})`,
        description: `Replaces the preferences. Webhook URLs must be ${describeWebhookUrlPolicy(webhookPolicy)}. Without \`webhookSecret\` the current secret is kept.`,
        ...(params === undefined ? {} : { params }),
        body: NotificationPreferencesBody,
        response: NotificationPreferencesView,
        handler: async (input, request) => {
          const owner = ownerOf(request, (input as { params: unknown }).params)
          const prefs = await preferencesFrom(input.body, owner)
          await preferences.put(owner, prefs)
          return preferencesView(prefs)
        },
      })
    }

    preferenceRoutes(
      '/practices/:practiceId/notification-preferences',
      'PracticeNotificationPreferences',
      'practice owners',
      (request, params) => {
        const { practiceId } = params as t.TypeOf<typeof PracticeParams>
        requireOwner(request, practiceId, false)
        return { kind: 'practice', practiceId }
      },
      PracticeParams,
    )
    preferenceRoutes(
      '/me/notification-preferences',
      'MyNotificationPreferences',
      'the signed-in user',
      (request) => {
        const actor = requireActor(request)
        if (actor.kind !== 'user') throw forbidden()
        return { kind: 'user', userId: actor.userId }
      },
      undefined,
    )

    await app.register(async (scope) => {
      // The confirmation page posts an HTML form; its (empty) body is not needed.
      scope.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: 1024 },
        (_request, _body, done) => done(null, {}),
      )

      const formActionOf = (token: string) => `${basePath}/decision-links/${encodeURIComponent(token)}`

      const confirm = async (token: string, reply: FastifyReply) => {
        const checked = links.check(token)
        if (!checked.ok) return sendOutcome(reply, checked.reason)
        if (!(await isCurrent(checked.claims))) return sendOutcome(reply, 'stale')
        return sendHtml(reply, 200, renderConfirmationPage(checked.claims.action, formActionOf(token)))
      }

      /** The link's delivery is the referral's current one, still pending, held by the link's practice. */
      const isCurrent = async (claims: DecisionClaims): Promise<number | null> => {
        const loaded = await engine.referrals.load(claims.referralId)()
        if (E.isLeft(loaded)) {
          if (isDomainError(loaded.left)) return null
          throw loaded.left
        }
        const state = loaded.right.state
        return state.exists &&
          state.status === 'pending' &&
          state.deliveryNo === claims.deliveryNo &&
          state.recipientPracticeId === claims.practiceId
          ? loaded.right.version
          : null
      }

      const pageDoc = {
        tags: ['decision links'],
        public: true,
        produces: 'text/html',
        responseDescription: 'An HTML page',
      } as const

      route(scope, {
        ...pageDoc,
        method: 'GET',
        url: '/decision-links/*',
        operationId: 'showDecisionLink',
        wildcardName: 'token',
        summary: 'Confirmation page of an accept/decline link from a notification (no token needed)',
        description:
          'Checks the link without using it (mail scanners open links): the POST to the same address acts.',
        params: TokenParams,
        handler: async ({ params }, _request, reply) => confirm(params['*'], reply),
      })

      route(scope, {
        ...pageDoc,
        method: 'GET',
        url: '/decision-links',
        operationId: 'showDecisionLinkByQuery',
        description:
          'The same confirmation page as /decision-links/{token}, for a token in the query string. Checks the link without using it.',
        summary: 'Confirmation page for links of the form /decision-links?token=…',
        query: TokenQuery,
        handler: async ({ query }, _request, reply) =>
          query.token === undefined ? sendOutcome(reply, 'malformed') : confirm(query.token, reply),
      })

      route(scope, {
        ...pageDoc,
        method: 'POST',
        url: '/decision-links/*',
        operationId: 'useDecisionLink',
        wildcardName: 'token',
        summary: 'Accept or decline the referral of a link (single use)',
        description:
          'Uses the link, then accepts or declines (reason code `other`) as a staff member of the linked practice, if the linked delivery is still the pending one. Answers with a small HTML page: accepted/declined 200, stale 409, expired or used 410, invalid 400.',
        params: TokenParams,
        successStatus: 200,
        handler: async ({ params }, _request, reply) => {
          const verified = await links.verify(params['*'])
          if (!verified.ok) return sendOutcome(reply, verified.reason)
          const { claims } = verified
          const version = await isCurrent(claims)
          if (version === null) return sendOutcome(reply, 'stale')
          const payload: ReferralCommandPayload =
            claims.action === 'accept'
              ? { type: 'AcceptReferral', data: {} }
              : { type: 'DeclineReferral', data: { reasonCode: 'other' } }
          const result = await engine.referrals.execute(
            claims.referralId,
            payload,
            {
              actor: decisionLinkActor(claims.practiceId),
              correlationId: unsafeId<CorrelationId>(`decision-link:${claims.nonce}`),
            },
            // Acts only on the state checked above: a concurrent change makes the link stale.
            { expectedVersion: version },
          )()
          if (E.isLeft(result)) {
            const stale = isDomainError(result.left) || result.left._tag === 'WrongExpectedVersion'
            if (stale) return sendOutcome(reply, 'stale')
            throw result.left
          }
          return sendOutcome(reply, claims.action === 'accept' ? 'accepted' : 'declined')
        },
      })
    })
  }
