import type { Channel, Notification } from './notification.js'
import { afterAttempt, type DeliveryState, defaultRetryPolicy, type RetryPolicy } from './retry.js'

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
 */
export interface OutboxStore {
  readonly enqueue: (entries: readonly NewOutboxEntry[], nowMs: number) => Promise<void>
  readonly claimDue: (nowMs: number, limit: number) => Promise<readonly OutboxEntry[]>
  readonly record: (id: string, state: DeliveryState) => Promise<void>
  readonly list: (filter?: { readonly status?: DeliveryState['status'] }) => Promise<readonly OutboxEntry[]>
}

export const inMemoryOutbox = (): OutboxStore => {
  const entries = new Map<string, OutboxEntry>()
  const claimed = new Set<string>()
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
        const erase = state.status !== 'pending' && entry.notification.audience === 'patient'
        entries.set(id, { ...entry, state, ...(erase ? { address: null } : {}) })
      }
    },
    list: async (filter) =>
      [...entries.values()].filter((e) => filter?.status === undefined || e.state.status === filter.status),
  }
}

/**
 * Delivers every due entry once and records the outcome. Run it on an interval (the scheduler
 * does); it never throws for a failed delivery, only for a broken outbox store.
 */
export const deliverDue = async (options: {
  readonly outbox: OutboxStore
  /** Channels by name; each receives the addresses that were queued for it. */
  readonly channels: ReadonlyMap<string, Channel<never>>
  readonly nowMs: number
  readonly limit?: number
  readonly policy?: RetryPolicy
}): Promise<{ readonly delivered: number; readonly retried: number; readonly deadLettered: number }> => {
  const policy = options.policy ?? defaultRetryPolicy
  const due = await options.outbox.claimDue(options.nowMs, options.limit ?? 100)
  let delivered = 0
  let retried = 0
  let deadLettered = 0
  for (const entry of due) {
    const channel = options.channels.get(entry.channel)
    const result = channel
      ? await channel.deliver(entry.notification, entry.address as never)
      : ({ ok: false, retryable: false, reason: 'unknown channel' } as const)
    const state = afterAttempt(policy, entry.state.attempts, result, options.nowMs)
    await options.outbox.record(entry.notification.id, state)
    if (state.status === 'delivered') delivered++
    else if (state.status === 'dead_letter') deadLettered++
    else retried++
  }
  return { delivered, retried, deadLettered }
}
