import type { Channel, Notification } from './notification.js'
import {
  afterAttempt,
  afterReceipts,
  type DeliveryState,
  defaultRetryPolicy,
  type RetryPolicy,
} from './retry.js'

/** One notification to one address over one channel, with its delivery state. */
export interface OutboxEntry {
  readonly notification: Notification
  readonly channel: string
  readonly address: unknown
  readonly state: DeliveryState
}

/** An entry to queue; `notBeforeMs` delays its first attempt (quiet hours), default `nowMs`. */
export interface NewOutboxEntry extends Omit<OutboxEntry, 'state'> {
  readonly notBeforeMs?: number
}

/**
 * Outbox storage. `enqueue` is idempotent on `notification.id` (a re-derived notification after a
 * crash is not queued twice); `claimDue` hands each due entry to one worker at a time. Once a
 * patient notification is delivered or dead-lettered its address (the patient's contact, PHI) is
 * erased from the entry.
 *
 * Delivery receipts (SMPP): `recordReceipt` keeps a carrier receipt by (channel, message id),
 * whichever process's session received it and whether or not its entry is recorded yet;
 * `claimAwaiting` hands out entries in `awaiting_receipt` or `uncertain` that have a receipt or
 * whose deadline has passed, with `state.receipts` filled in (for `uncertain`, only receipts
 * recorded at or after its `sinceMs`). Such an entry is never returned by `claimDue`.
 */
export interface OutboxStore {
  readonly enqueue: (entries: readonly NewOutboxEntry[], nowMs: number) => Promise<void>
  readonly claimDue: (nowMs: number, limit: number) => Promise<readonly OutboxEntry[]>
  readonly record: (id: string, state: DeliveryState) => Promise<void>
  readonly recordReceipt: (channel: string, messageId: string, stat: string, nowMs: number) => Promise<void>
  readonly claimAwaiting: (nowMs: number, limit: number) => Promise<readonly OutboxEntry[]>
  readonly list: (filter?: { readonly status?: DeliveryState['status'] }) => Promise<readonly OutboxEntry[]>
}

export const inMemoryOutbox = (): OutboxStore => {
  const entries = new Map<string, OutboxEntry>()
  const claimed = new Set<string>()
  const receipts = new Map<string, { readonly stat: string; readonly atMs: number }>()
  const receiptKey = (channel: string, messageId: string) => `${channel}\u0000${messageId}`
  const withReceipts = (entry: OutboxEntry): OutboxEntry => {
    const state = entry.state
    if (state.status !== 'awaiting_receipt' && state.status !== 'uncertain') return entry
    const sinceMs = state.status === 'uncertain' ? state.sinceMs : Number.NEGATIVE_INFINITY
    const got: Record<string, string> = {}
    for (const id of state.messageIds) {
      const receipt = receipts.get(receiptKey(entry.channel, id))
      if (receipt !== undefined && receipt.atMs >= sinceMs) got[id] = receipt.stat
    }
    return { ...entry, state: { ...state, receipts: got } }
  }
  return {
    enqueue: async (items, nowMs) => {
      for (const item of items) {
        if (entries.has(item.notification.id)) continue
        entries.set(item.notification.id, {
          notification: item.notification,
          channel: item.channel,
          address: item.address,
          state: {
            status: 'pending',
            attempts: 0,
            nextAttemptAtMs: item.notBeforeMs ?? nowMs,
            lastError: null,
          },
        })
      }
    },
    claimDue: async (nowMs, limit) => {
      const due: OutboxEntry[] = []
      for (const [id, entry] of entries) {
        if (due.length >= limit) break
        if (entry.state.status === 'pending' && entry.state.nextAttemptAtMs <= nowMs && !claimed.has(id)) {
          claimed.add(id)
          due.push(entry)
        }
      }
      return due
    },
    record: async (id, state) => {
      const entry = entries.get(id)
      claimed.delete(id)
      if (entry) {
        const final = state.status === 'delivered' || state.status === 'dead_letter'
        const erase = final && entry.notification.audience === 'patient'
        entries.set(id, { ...entry, state, ...(erase ? { address: null } : {}) })
        if (final && (entry.state.status === 'awaiting_receipt' || entry.state.status === 'uncertain'))
          for (const m of entry.state.messageIds) receipts.delete(receiptKey(entry.channel, m))
      }
    },
    recordReceipt: async (channel, messageId, stat, nowMs) => {
      receipts.set(receiptKey(channel, messageId), { stat, atMs: nowMs })
    },
    claimAwaiting: async (nowMs, limit) => {
      const ready: OutboxEntry[] = []
      for (const [id, stored] of entries) {
        if (ready.length >= limit) break
        const waiting = stored.state.status === 'awaiting_receipt' || stored.state.status === 'uncertain'
        if (!waiting || claimed.has(id)) continue
        const entry = withReceipts(stored)
        const state = entry.state as Extract<DeliveryState, { status: 'awaiting_receipt' | 'uncertain' }>
        if (Object.keys(state.receipts).length > 0 || state.receiptDeadlineMs <= nowMs) {
          claimed.add(id)
          ready.push(entry)
        }
      }
      return ready
    },
    list: async (filter) =>
      [...entries.values()]
        .filter((e) => filter?.status === undefined || e.state.status === filter.status)
        .map(withReceipts),
  }
}

/**
 * Delivers every due entry once and records the outcome, then settles entries awaiting delivery
 * receipts (`afterReceipts`: delivered, retried per the policy, dead-lettered, or a receipt
 * timeout — never a resend) and uncertain entries (unanswered submits) whose receipt came or whose
 * window ended (`policy.uncertain`: dead letter by default, or a resend). Run it on an interval (the scheduler does); it never throws for a
 * failed delivery, only for a broken outbox store.
 */
export const deliverDue = async (options: {
  readonly outbox: OutboxStore
  /** Channels by name; each receives the addresses that were queued for it. */
  readonly channels: ReadonlyMap<string, Channel<never>>
  readonly nowMs: number
  readonly limit?: number
  readonly policy?: RetryPolicy
}): Promise<{
  readonly delivered: number
  readonly retried: number
  readonly deadLettered: number
  /** Submitted in this pass and now waiting for their delivery receipts. */
  readonly awaitingReceipt: number
  /** Submitted in this pass with no answer: parked as `uncertain`, not resubmitted (see `RetryPolicy.uncertain`). */
  readonly uncertain: number
}> => {
  const policy = options.policy ?? defaultRetryPolicy
  const due = await options.outbox.claimDue(options.nowMs, options.limit ?? 100)
  let delivered = 0
  let retried = 0
  let deadLettered = 0
  let awaitingReceipt = 0
  let uncertain = 0
  for (const entry of due) {
    const channel = options.channels.get(entry.channel)
    const result = channel
      ? await channel.deliver(entry.notification, entry.address as never)
      : ({ ok: false, retryable: false, reason: 'unknown channel' } as const)
    const state = afterAttempt(policy, entry.state.attempts, result, options.nowMs)
    await options.outbox.record(entry.notification.id, state)
    if (state.status === 'delivered') delivered++
    else if (state.status === 'dead_letter') deadLettered++
    else if (state.status === 'awaiting_receipt') awaitingReceipt++
    else if (state.status === 'uncertain') uncertain++
    else retried++
  }
  const ready = await options.outbox.claimAwaiting(options.nowMs, options.limit ?? 100)
  for (const entry of ready) {
    if (entry.state.status !== 'awaiting_receipt' && entry.state.status !== 'uncertain') continue
    const next = afterReceipts(policy, entry.state, options.nowMs)
    // Still waiting (some parts' receipts are missing): record the same state, ending the claim.
    await options.outbox.record(entry.notification.id, next ?? entry.state)
    if (next?.status === 'delivered') delivered++
    else if (next?.status === 'dead_letter') deadLettered++
    else if (next?.status === 'pending') retried++
  }
  return { delivered, retried, deadLettered, awaitingReceipt, uncertain }
}
