import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Channel, DeliveryResult, Notification } from './notification.js'

/**
 * Signed webhooks. The signature header is `t=<unix seconds>,v1=<hex HMAC-SHA256>` computed over
 * `<t>.<raw body>` with the subscriber's secret, so a receiver can check both integrity and
 * freshness (replay window) before trusting the body.
 */
export const SIGNATURE_HEADER = 'x-referrals-signature'
export const EVENT_ID_HEADER = 'x-referrals-event-id'

export const signWebhook = (secret: string, timestampSeconds: number, body: string): string =>
  `t=${timestampSeconds},v1=${createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')}`

export type SignatureCheck = { readonly valid: true } | { readonly valid: false; readonly reason: string }

export const verifyWebhookSignature = (options: {
  readonly secret: string
  readonly header: string | undefined
  readonly body: string
  readonly nowSeconds: number
  readonly toleranceSeconds?: number
}): SignatureCheck => {
  const { header, secret, body, nowSeconds, toleranceSeconds = 300 } = options
  const match = header === undefined ? null : /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header)
  if (match === null) return { valid: false, reason: 'missing or malformed signature header' }
  const timestamp = Number(match[1])
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds)
    return { valid: false, reason: 'timestamp outside tolerance' }
  const expected = Buffer.from(signWebhook(secret, timestamp, body).slice(-64), 'hex')
  const given = Buffer.from(match[2] ?? '', 'hex')
  return timingSafeEqual(expected, given) ? { valid: true } : { valid: false, reason: 'signature mismatch' }
}

export interface WebhookAddress {
  readonly url: string
  readonly secret: string
}

/**
 * The JSON body: the structured payload plus a `text` field, which is what chat tools' incoming
 * webhooks (Slack, Mattermost, Rocket.Chat, Teams connectors) display.
 */
export const webhookBody = (n: Notification): string =>
  JSON.stringify({
    id: n.id,
    eventId: n.eventId,
    kind: n.kind,
    text: `${n.subject}\n${n.text}`,
    payload: n.payload,
  })

export const webhookChannel = (
  options: { readonly timeoutMs?: number; readonly nowSeconds?: () => number } = {},
): Channel<WebhookAddress> => ({
  name: 'webhook',
  deliver: async (notification, address): Promise<DeliveryResult> => {
    const body = webhookBody(notification)
    const timestamp = options.nowSeconds?.() ?? Math.floor(Date.now() / 1000)
    try {
      const response = await fetch(address.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signWebhook(address.secret, timestamp, body),
          [EVENT_ID_HEADER]: notification.eventId,
          'x-referrals-delivery-id': notification.id,
        },
        body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        redirect: 'error',
      })
      await response.arrayBuffer().catch(() => undefined)
      if (response.ok) return { ok: true }
      // 4xx other than 408/429 will not get better by retrying.
      const retryable = response.status >= 500 || response.status === 408 || response.status === 429
      return { ok: false, retryable, reason: `HTTP ${response.status}` }
    } catch (error) {
      const name = error instanceof Error ? error.name : 'Error'
      return { ok: false, retryable: true, reason: name === 'TimeoutError' ? 'timeout' : 'connection failed' }
    }
  },
})
