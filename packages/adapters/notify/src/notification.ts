/**
 * A notification ready for delivery. It is derived from one committed event, and `eventId` travels
 * with every delivery (webhook header, email header) so receivers can deduplicate: delivery is at
 * least once.
 */
export interface Notification {
  /** Unique per (event, recipient, channel): the outbox key. */
  readonly id: string
  readonly eventId: string
  readonly kind: string
  readonly audience: 'sender' | 'recipient' | 'patient'
  readonly subject: string
  /** Plain text. Patient-facing text carries no clinical detail (see templates.ts). */
  readonly text: string
  /** Structured, non-PHI payload for machine receivers (ids, kinds, times). */
  readonly payload: Readonly<Record<string, string | number | boolean | null>>
  /** Signed accept/decline URLs (decision links) when the notification asks for a decision. */
  readonly links?: { readonly accept: string; readonly decline: string }
}

export type DeliveryResult =
  | { readonly ok: true }
  /**
   * Handed to the carrier, not yet confirmed (SMPP after `submit_sm_resp`): the outbox records the
   * carrier's message ids and waits for their delivery receipts (`OutboxStore.recordReceipt`) up to
   * `timeoutMs`; the message is never submitted again while it waits.
   */
  | {
      readonly ok: true
      readonly awaitingReceipt: { readonly messageIds: readonly string[]; readonly timeoutMs: number }
    }
  | { readonly ok: false; readonly retryable: boolean; readonly reason: string }
  /**
   * Handed to the carrier with no answer (SMPP: `submit_sm` written, then no `submit_sm_resp` before
   * the timeout or the connection dropped): the message may or may not have gone out. The outbox
   * parks it as `uncertain` for `windowMs`, matching receipts by `messageIds` (the SMSC ids of the
   * parts that were answered, `ref:<n>` for an unanswered part — its `user_message_reference` —
   * and `unsent:<i>` for a part never submitted, which no receipt ever matches), and never
   * submits it again during the window; after it, `RetryPolicy.uncertain` decides.
   */
  | {
      readonly ok: false
      readonly uncertain: { readonly messageIds: readonly string[]; readonly windowMs: number }
      readonly reason: string
    }

/** A channel delivers one notification to one address (a webhook URL, an email address). */
export interface Channel<Address> {
  readonly name: string
  readonly deliver: (notification: Notification, address: Address) => Promise<DeliveryResult>
}
