import type { ActionsBlock, Button, KnownBlock, SectionBlock } from '@slack/types'
import { IncomingWebhook } from '@slack/webhook'
import type { Channel, DeliveryResult, Notification } from './notification.js'

/**
 * Slack through an incoming webhook (one per practice referral channel). Messages are Block Kit;
 * by default they carry only the referral number, its category (specialty code), urgency and the
 * accept/decline buttons, whose URLs are the signed decision links — no PHI and no practice
 * names. A practice may set `chatDetail: 'full'` to add the rendered practice-facing text (which
 * never has patient identity; see templates.ts).
 */
export interface SlackAddress {
  readonly webhookUrl: string
  /** Slack user ids (`U…`/`W…`) to @-mention: the preferred provider on a direct referral. */
  readonly mentions?: readonly string[]
  readonly detail?: 'minimal' | 'full'
}

export const SLACK_USER_ID = /^[UW][A-Z0-9]{2,20}$/

/** The headline of each practice notification kind in chat (Slack and Teams). */
export const CHAT_HEADLINES: Readonly<Record<string, string>> = {
  'recipient.new_referral': 'New referral',
  'recipient.reminder': 'Reminder: referral waiting for an answer',
  'recipient.expired': 'Referral expired without an answer',
  'sender.receipt': 'Referral delivered',
  'sender.rerouted': 'Referral re-routed',
  'sender.accepted': 'Referral accepted',
  'sender.declined': 'Referral declined',
  'sender.scheduled': 'Appointment scheduled',
  'sender.completed': 'Referral completed',
}
const FOLLOW_UP_ICON: Readonly<Record<string, string>> = {
  'sender.accepted': ':white_check_mark:',
  'sender.declined': ':x:',
  'recipient.expired': ':hourglass:',
}

/** Slack mrkdwn escaping of `&`, `<`, `>` (so ids cannot form links or mentions). */
const mrkdwnEscape = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const field = (v: unknown): string =>
  typeof v === 'string' || typeof v === 'number' ? mrkdwnEscape(String(v)) : '—'

/** The Block Kit message for one notification (pure). */
export const slackMessage = (
  n: Notification,
  address: Pick<SlackAddress, 'mentions' | 'detail'> = {},
): { readonly text: string; readonly blocks: KnownBlock[] } => {
  const ref = field(n.payload.referralId)
  const headline = CHAT_HEADLINES[n.kind] ?? 'Referral update'
  const icon = FOLLOW_UP_ICON[n.kind]
  const mentions = (address.mentions ?? []).filter((id) => SLACK_USER_ID.test(id)).map((id) => `<@${id}>`)
  const lead = [...mentions, icon, `*${headline}*`, `#${ref}`].filter(Boolean).join(' ')
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: lead } } satisfies SectionBlock,
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Referral*\n${ref}` },
        { type: 'mrkdwn', text: `*Category*\n${field(n.payload.specialtyId)}` },
        { type: 'mrkdwn', text: `*Urgency*\n${field(n.payload.urgency)}` },
      ],
    } satisfies SectionBlock,
  ]
  if (address.detail === 'full') {
    blocks.push({ type: 'section', text: { type: 'plain_text', text: n.text.slice(0, 2900) } })
  }
  if (n.links !== undefined) {
    const button = (action: 'accept' | 'decline', url: string): Button => ({
      type: 'button',
      action_id: `referral_${action}`,
      text: { type: 'plain_text', text: action === 'accept' ? 'Accept' : 'Decline' },
      style: action === 'accept' ? 'primary' : 'danger',
      url,
    })
    blocks.push({
      type: 'actions',
      block_id: `decision_${ref}`.slice(0, 255),
      elements: [button('accept', n.links.accept), button('decline', n.links.decline)],
    } satisfies ActionsBlock)
  }
  // `text` is the notification fallback (push notifications, screen readers): same minimal facts.
  return { text: `${[...mentions, headline].join(' ')} #${ref}`, blocks }
}

export const slackChannel = (options: { readonly timeoutMs?: number } = {}): Channel<SlackAddress> => ({
  name: 'slack',
  deliver: async (notification, address): Promise<DeliveryResult> => {
    const webhook = new IncomingWebhook(address.webhookUrl, { timeout: options.timeoutMs ?? 10_000 })
    try {
      await webhook.send(slackMessage(notification, address))
      return { ok: true }
    } catch (error) {
      const status = (error as { statusCode?: unknown }).statusCode
      if (typeof status !== 'number') return { ok: false, retryable: true, reason: 'connection failed' }
      // Slack answers 4xx for a revoked hook or a bad payload (not retried), 429 when rate limited.
      const retryable = status >= 500 || status === 408 || status === 429
      return { ok: false, retryable, reason: `HTTP ${status}` }
    }
  },
})
