import type { Channel, DeliveryResult, Notification } from './notification.js'
import { CHAT_HEADLINES } from './slack.js'

/**
 * Microsoft Teams through an incoming webhook (a channel's Workflows "When a Teams webhook request
 * is received" URL, or a legacy connector URL): one Adaptive Card per notification. Like Slack, by
 * default the card carries only the referral number, its category (specialty code), urgency and
 * the signed accept/decline links as `Action.OpenUrl` buttons — no PHI and no practice names; a
 * practice may set `chatDetail: 'full'` to add the practice-facing text (never patient identity).
 *
 * There is no official SDK for incoming webhooks (the Bot Framework SDKs are for bots), so the card
 * is plain JSON posted with Node's `fetch`; its shape is the documented one
 * (`{ type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive',
 * content: AdaptiveCard }] }`, mentions as `<at>…</at>` with a `msteams.entities` entry).
 */
export interface TeamsAddress {
  readonly webhookUrl: string
  /** Members to @-mention (the preferred provider on a direct referral): UPNs or Entra object ids. */
  readonly mentions?: readonly string[]
  readonly detail?: 'minimal' | 'full'
}

/** A Teams member id for a mention: a user principal name (`dr.a@clinic.example`) or an Entra object id. */
export const TEAMS_USER_ID =
  /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63})$/

/** What a mention is shown as: the id is the UPN or object id, the name is not known to the engine. */
const MENTION_NAME = 'preferred provider'

type TextBlock = {
  readonly type: 'TextBlock'
  readonly text: string
  readonly wrap: true
  readonly weight?: 'Bolder'
  readonly size?: 'Medium'
}
type FactSet = {
  readonly type: 'FactSet'
  readonly facts: readonly { readonly title: string; readonly value: string }[]
}
type OpenUrl = {
  readonly type: 'Action.OpenUrl'
  readonly title: string
  readonly url: string
  readonly style: 'positive' | 'destructive'
}
type Mention = {
  readonly type: 'mention'
  readonly text: string
  readonly mentioned: { readonly id: string; readonly name: string }
}

export interface AdaptiveCard {
  readonly $schema: 'http://adaptivecards.io/schemas/adaptive-card.json'
  readonly type: 'AdaptiveCard'
  readonly version: '1.4'
  readonly body: readonly (TextBlock | FactSet)[]
  readonly actions?: readonly OpenUrl[]
  readonly msteams?: { readonly entities: readonly Mention[] }
}

export interface TeamsMessage {
  readonly type: 'message'
  /** The notification fallback (activity feed, screen readers): the same minimal facts. */
  readonly summary: string
  readonly attachments: readonly [
    { readonly contentType: 'application/vnd.microsoft.card.adaptive'; readonly content: AdaptiveCard },
  ]
}

const FOLLOW_UP_MARK: Readonly<Record<string, string>> = {
  'sender.accepted': '✅',
  'sender.declined': '❌',
  'recipient.expired': '⌛',
}

/**
 * Card text is Markdown: a value is shown only if it is an id-like string (letters, digits and
 * `_ . : -`, as referral and specialty ids are), so nothing from the payload can form a link, a
 * mention or formatting beyond an underscore.
 */
const field = (v: unknown): string => {
  const s = typeof v === 'number' ? String(v) : v
  return typeof s === 'string' && /^[A-Za-z0-9_.:-]{1,128}$/.test(s) ? s : '—'
}

/** The Teams message for one notification (pure). */
export const teamsMessage = (
  n: Notification,
  address: Pick<TeamsAddress, 'mentions' | 'detail'> = {},
): TeamsMessage => {
  const ref = field(n.payload.referralId)
  const headline = CHAT_HEADLINES[n.kind] ?? 'Referral update'
  const mentioned = [...new Set(address.mentions ?? [])].filter((id) => TEAMS_USER_ID.test(id))
  const atText = mentioned.map(() => `<at>${MENTION_NAME}</at>`)
  const lead = [...atText, FOLLOW_UP_MARK[n.kind], `**${headline}** #${ref}`].filter(Boolean).join(' ')
  const body: (TextBlock | FactSet)[] = [
    { type: 'TextBlock', text: lead, wrap: true, size: 'Medium' },
    {
      type: 'FactSet',
      facts: [
        { title: 'Referral', value: ref },
        { title: 'Category', value: field(n.payload.specialtyId) },
        { title: 'Urgency', value: field(n.payload.urgency) },
      ],
    },
  ]
  // The practice-facing text has practice names and times, never patient identity (templates.ts);
  // its Markdown characters become spaces, so a practice name cannot format the card or form a link.
  if (address.detail === 'full')
    body.push({ type: 'TextBlock', text: n.text.slice(0, 2900).replace(/[*_[\]<>`~#|\\]/g, ' '), wrap: true })
  const actions: OpenUrl[] | undefined =
    n.links === undefined
      ? undefined
      : [
          { type: 'Action.OpenUrl', title: 'Accept', url: n.links.accept, style: 'positive' },
          { type: 'Action.OpenUrl', title: 'Decline', url: n.links.decline, style: 'destructive' },
        ]
  const card: AdaptiveCard = {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: '1.4',
    body,
    ...(actions === undefined ? {} : { actions }),
    ...(mentioned.length === 0
      ? {}
      : {
          msteams: {
            entities: mentioned.map((id) => ({
              type: 'mention' as const,
              text: `<at>${MENTION_NAME}</at>`,
              mentioned: { id, name: MENTION_NAME },
            })),
          },
        }),
  }
  return {
    type: 'message',
    summary: `${headline} #${ref}`,
    attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: card }],
  }
}

/**
 * Delivery: 2xx delivered (Workflows answer 202, legacy connectors 200); 5xx, 408, 429, a timeout
 * or a connection failure retried; a redirect (never followed) and other 4xx (a deleted
 * workflow, a payload Teams refuses) dead letter. Reasons name the status only, never the response body.
 */
export const teamsChannel = (options: { readonly timeoutMs?: number } = {}): Channel<TeamsAddress> => ({
  name: 'teams',
  deliver: async (notification, address): Promise<DeliveryResult> => {
    let status: number
    try {
      const response = await fetch(address.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(teamsMessage(notification, address)),
        // A redirect is not followed: the address policy checked this URL, not where it points.
        redirect: 'manual',
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      })
      status = response.status
      await response.body?.cancel()
    } catch {
      return { ok: false, retryable: true, reason: 'connection failed' }
    }
    if (status >= 200 && status < 300) return { ok: true }
    const retryable = status >= 500 || status === 408 || status === 429 // 3xx and other 4xx: dead letter
    return { ok: false, retryable, reason: `HTTP ${status}` }
  },
})
