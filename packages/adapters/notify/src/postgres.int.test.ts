import { type Instant, manualClock, type PracticeId, type ReferralId, type UserId } from '@referrals/core'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createDecisionLinks } from './decision-links.js'
import type { Channel, Notification } from './notification.js'
import { deliverDue, type OutboxStore } from './outbox.js'
import {
  createPostgresOutbox,
  createPostgresPreferences,
  createPostgresUsedLinks,
  migrateNotifySchema,
} from './postgres.js'
import { NO_RECEIPT_REASON, UNCERTAIN_REASON } from './retry.js'
import { smppChannel } from './sms.js'
import { startSmsc } from './testing/smsc.js'

let db: TestDatabase
let poolA: pg.Pool
let poolB: pg.Pool
let schemaNo = 0
const freshSchema = () => `notify_t${++schemaNo}`

beforeAll(async () => {
  db = await createTestDatabase()
  poolA = new pg.Pool({ connectionString: db.url, max: 5 })
  poolB = new pg.Pool({ connectionString: db.url, max: 5 })
})
afterAll(async () => {
  await poolA.end()
  await poolB.end()
  await db.drop()
})

const notification = (n: number, audience: Notification['audience'] = 'recipient'): Notification => ({
  id: `evt-${n}:${audience}:kind:email:owner`,
  eventId: `evt-${n}`,
  kind: 'recipient.new_referral',
  audience,
  subject: `Subject ${n}`,
  text: `Text ${n}`,
  payload: { referralId: `r-${n}`, deliveryNo: 1 },
})
const entry = (n: number, audience?: Notification['audience']) => ({
  notification: notification(n, audience),
  channel: 'email',
  address: { email: `to-${n}@example.test` },
})

const countingChannel = (
  deliveries: Map<string, number>,
  result: () => Awaited<ReturnType<Channel<unknown>['deliver']>> = () => ({ ok: true }),
): Channel<unknown> => ({
  name: 'email',
  deliver: async (n) => {
    deliveries.set(n.id, (deliveries.get(n.id) ?? 0) + 1)
    // Yield so that concurrent workers really interleave.
    await new Promise((r) => setImmediate(r))
    return result()
  },
})

describe('PostgreSQL outbox', () => {
  it('migrates concurrently and queues idempotently on the notification id', async () => {
    const schema = freshSchema()
    await Promise.all([migrateNotifySchema(poolA, schema), migrateNotifySchema(poolB, schema)])
    const outbox = await createPostgresOutbox({ pool: poolA, schema })
    await outbox.enqueue([entry(1), entry(2)], 1_000)
    await outbox.enqueue([entry(2), entry(3)], 2_000)
    const all = await outbox.list()
    expect(all.map((e) => e.notification.id)).toEqual([1, 2, 3].map((n) => notification(n).id))
    expect(all[1]?.state).toEqual({ status: 'pending', attempts: 0, nextAttemptAtMs: 1_000, lastError: null })
    expect(all[0]?.notification).toEqual(notification(1))
    expect(all[0]?.address).toEqual({ email: 'to-1@example.test' })
  })

  it('hands each due entry to exactly one of two concurrent workers', async () => {
    const schema = freshSchema()
    const a = await createPostgresOutbox({ pool: poolA, schema })
    const b = await createPostgresOutbox({ pool: poolB, schema, migrate: false })
    const total = 120
    await a.enqueue(
      Array.from({ length: total }, (_, i) => entry(i)),
      0,
    )
    const claimedBy = new Map<string, string>()
    const doubles: string[] = []
    const worker = async (name: string, outbox: OutboxStore) => {
      for (;;) {
        const batch = await outbox.claimDue(10, 7)
        if (batch.length === 0) return
        for (const e of batch) {
          if (claimedBy.has(e.notification.id)) doubles.push(e.notification.id)
          claimedBy.set(e.notification.id, name)
        }
      }
    }
    await Promise.all([worker('a', a), worker('b', b), worker('a2', a), worker('b2', b)])
    expect(doubles).toEqual([])
    expect(claimedBy.size).toBe(total)
    expect(new Set(claimedBy.values()).size).toBeGreaterThan(1)
  })

  it('delivers each entry exactly once through deliverDue from two processes', async () => {
    const schema = freshSchema()
    const a = await createPostgresOutbox({ pool: poolA, schema })
    const b = await createPostgresOutbox({ pool: poolB, schema, migrate: false })
    await a.enqueue(
      Array.from({ length: 60 }, (_, i) => entry(i)),
      0,
    )
    const deliveries = new Map<string, number>()
    const channels = new Map([['email', countingChannel(deliveries)]])
    const run = async (outbox: OutboxStore) => {
      let delivered = 0
      for (;;) {
        const r = await deliverDue({ outbox, channels, nowMs: 5, limit: 5 })
        if (r.delivered === 0) return delivered
        delivered += r.delivered
      }
    }
    const [da, db2] = await Promise.all([run(a), run(b)])
    expect(da + db2).toBe(60)
    expect([...deliveries.values()].every((n) => n === 1)).toBe(true)
    expect(deliveries.size).toBe(60)
    expect(await a.list({ status: 'pending' })).toEqual([])
    expect(await a.list({ status: 'delivered' })).toHaveLength(60)
  })

  it('retries with backoff and lists dead-lettered entries; erases a patient address once done', async () => {
    const schema = freshSchema()
    const outbox = await createPostgresOutbox({ pool: poolA, schema })
    await outbox.enqueue([entry(1), entry(2, 'patient')], 0)
    const deliveries = new Map<string, number>()
    const channels = new Map([
      ['email', countingChannel(deliveries, () => ({ ok: false, retryable: true, reason: 'SMTP 421' }))],
    ])
    const policy = { maxAttempts: 3, baseDelayMs: 100, factor: 2, maxDelayMs: 10_000 }
    expect(await deliverDue({ outbox, channels, nowMs: 0, policy })).toEqual({
      delivered: 0,
      retried: 2,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect((await outbox.list())[0]?.state).toEqual({
      status: 'pending',
      attempts: 1,
      nextAttemptAtMs: 100,
      lastError: 'SMTP 421',
    })
    expect((await deliverDue({ outbox, channels, nowMs: 99, policy })).retried).toBe(0)
    expect((await deliverDue({ outbox, channels, nowMs: 100, policy })).retried).toBe(2)
    expect(await deliverDue({ outbox, channels, nowMs: 300, policy })).toEqual({
      delivered: 0,
      retried: 0,
      deadLettered: 2,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    const dead = await outbox.list({ status: 'dead_letter' })
    expect(dead.map((e) => e.state)).toEqual([
      { status: 'dead_letter', attempts: 3, lastError: 'SMTP 421' },
      { status: 'dead_letter', attempts: 3, lastError: 'SMTP 421' },
    ])
    expect(dead.map((e) => e.address)).toEqual([{ email: 'to-1@example.test' }, null])
    expect(await outbox.list({ status: 'pending' })).toEqual([])
  })

  it('leases claimed entries: not claimed again until the lease runs out (a crashed worker)', async () => {
    const schema = freshSchema()
    const outbox = await createPostgresOutbox({ pool: poolA, schema, leaseMs: 1_000 })
    await outbox.enqueue([entry(1), { ...entry(2), notBeforeMs: 5_000 }], 0)
    expect((await outbox.claimDue(0, 10)).map((e) => e.notification.eventId)).toEqual(['evt-1'])
    expect(await outbox.claimDue(999, 10)).toEqual([])
    expect((await outbox.claimDue(1_000, 10)).map((e) => e.notification.eventId)).toEqual(['evt-1'])
    await outbox.record(notification(1).id, { status: 'delivered', attempts: 1, deliveredAtMs: 1_001 })
    expect((await outbox.claimDue(5_000, 10)).map((e) => e.notification.eventId)).toEqual(['evt-2'])
    expect((await outbox.list({ status: 'delivered' }))[0]?.state).toEqual({
      status: 'delivered',
      attempts: 1,
      deliveredAtMs: 1_001,
    })
  })

  it('keeps a submitted SMS awaiting its receipts across processes: never resubmitted, settled by a receipt any process stored', async () => {
    const schema = freshSchema()
    const a = await createPostgresOutbox({ pool: poolA, schema })
    const b = await createPostgresOutbox({ pool: poolB, schema })
    const smsc = await startSmsc({ systemId: 'referrals', password: 'pw' })
    const channel = smppChannel({
      url: smsc.url,
      systemId: 'referrals',
      password: 'pw',
      sourceAddr: 'Referrals',
      receiptTimeoutMs: 60_000,
    })
    // The receipts reach process B's store (its session, say); process A's loop settles them.
    channel.onReceipt((r) => {
      void b.recordReceipt('sms', r.messageId, r.stat, 0)
    })
    const channels = new Map([['sms', channel as Channel<never>]])
    try {
      smsc.state.receipt = (n) => (n === 1 ? null : 'DELIVRD')
      const sms = (n: number, audience?: Notification['audience']) => ({
        ...entry(n, audience),
        channel: 'sms',
        address: { phone: '+15145550123' },
      })
      await a.enqueue([sms(1), sms(2, 'patient')], 0)
      expect(await deliverDue({ outbox: a, channels, nowMs: 0 })).toMatchObject({
        awaitingReceipt: 2,
        uncertain: 0,
      })
      const ids = smsc.submits.map((x) => x.messageId)
      await vi.waitFor(
        async () => {
          const [, second] = await a.list()
          expect(second?.state).toMatchObject({
            status: 'awaiting_receipt',
            receipts: { [ids[1] ?? '']: 'DELIVRD' },
          })
        },
        { timeout: 5_000, interval: 20 },
      )
      // Neither process claims an awaiting entry for a new submit, however late.
      expect(await b.claimDue(1_000_000, 10)).toEqual([])
      expect(await deliverDue({ outbox: b, channels, nowMs: 1_000 })).toEqual({
        delivered: 1,
        retried: 0,
        deadLettered: 0,
        awaitingReceipt: 0,
        uncertain: 0,
      })
      const [first, second] = await a.list()
      expect(first?.state).toEqual({
        status: 'awaiting_receipt',
        attempts: 1,
        messageIds: [ids[0]],
        receiptDeadlineMs: 60_000,
        receipts: {},
      })
      // Delivered: the patient's phone is erased.
      expect(second?.state).toEqual({ status: 'delivered', attempts: 1, deliveredAtMs: 1_000 })
      expect(second?.address).toBeNull()
      // The first never gets a receipt: at the deadline it is dead-lettered, not resent.
      expect((await deliverDue({ outbox: a, channels, nowMs: 60_000 })).deadLettered).toBe(1)
      expect((await a.list({ status: 'dead_letter' }))[0]?.state).toEqual({
        status: 'dead_letter',
        attempts: 1,
        lastError: NO_RECEIPT_REASON,
      })
      expect(smsc.submits).toHaveLength(2)
      // Settled receipts are removed; what stays is the echo by client reference (`ref:<n>`, kept
      // for uncertain submits: at most one row per 16-bit reference, overwritten on reuse).
      const left = await poolA.query<{ message_id: string }>(
        `SELECT message_id FROM "${schema}".delivery_receipts ORDER BY message_id`,
      )
      expect(left.rows.map((r) => r.message_id)).toEqual([
        `ref:${smsc.submits[1]?.pdu.user_message_reference}`,
      ])
    } finally {
      await channel.close()
      await smsc.close()
    }
  })

  it('keeps an uncertain SMS (submit unanswered) out of claimDue; only receipts since its submit settle it', async () => {
    const schema = freshSchema()
    const a = await createPostgresOutbox({ pool: poolA, schema })
    const b = await createPostgresOutbox({ pool: poolB, schema })
    await a.enqueue([{ ...entry(1), channel: 'sms', address: { phone: '+15145550123' } }], 0)
    const uncertain = {
      status: 'uncertain',
      attempts: 1,
      messageIds: ['m-1', 'ref:42'],
      sinceMs: 5_000,
      receiptDeadlineMs: 65_000,
      receipts: {},
      lastError: 'SMPP submit_sm_resp timeout',
    } as const
    expect(await a.claimDue(0, 10)).toHaveLength(1)
    await a.record(notification(1).id, uncertain)
    expect((await b.list())[0]?.state).toEqual(uncertain)
    expect(await b.claimDue(1_000_000, 10)).toEqual([])
    // A stale receipt with the same 16-bit reference (before the submit) does not count.
    await b.recordReceipt('sms', 'ref:42', 'DELIVRD', 4_999)
    await b.recordReceipt('sms', 'm-1', 'DELIVRD', 5_001)
    expect((await b.list())[0]?.state).toEqual({ ...uncertain, receipts: { 'm-1': 'DELIVRD' } })
    expect((await deliverDue({ outbox: b, channels: new Map(), nowMs: 6_000 })).delivered).toBe(0)
    await a.recordReceipt('sms', 'ref:42', 'DELIVRD', 5_500)
    expect(await deliverDue({ outbox: b, channels: new Map(), nowMs: 7_000 })).toMatchObject({ delivered: 1 })
    expect((await a.list())[0]?.state).toEqual({ status: 'delivered', attempts: 1, deliveredAtMs: 7_000 })
    const left = await poolA.query(`SELECT count(*)::int AS n FROM "${schema}".delivery_receipts`)
    expect(left.rows[0]?.n).toBe(0)
  })

  it('dead-letters an uncertain SMS whose window ends without a receipt (default policy), never claimed for a resend', async () => {
    const schema = freshSchema()
    const a = await createPostgresOutbox({ pool: poolA, schema })
    await a.enqueue([{ ...entry(2), channel: 'sms', address: { phone: '+15145550123' } }], 0)
    await a.claimDue(0, 10)
    await a.record(notification(2).id, {
      status: 'uncertain',
      attempts: 1,
      messageIds: ['ref:7'],
      sinceMs: 0,
      receiptDeadlineMs: 60_000,
      receipts: {},
      lastError: 'SMPP submit_sm_resp timeout',
    })
    const deliveries = new Map<string, number>()
    const channels = new Map([['sms', countingChannel(deliveries) as Channel<never>]])
    expect((await deliverDue({ outbox: a, channels, nowMs: 59_999 })).deadLettered).toBe(0)
    expect((await deliverDue({ outbox: a, channels, nowMs: 60_000 })).deadLettered).toBe(1)
    expect((await a.list())[0]?.state).toEqual({
      status: 'dead_letter',
      attempts: 1,
      lastError: UNCERTAIN_REASON,
    })
    await deliverDue({ outbox: a, channels, nowMs: 10_000_000 })
    expect(deliveries.size).toBe(0)
  })

  it('migrates an outbox table made before delivery receipts', async () => {
    const schema = freshSchema()
    await poolA.query(`CREATE SCHEMA "${schema}"`)
    await poolA.query(`CREATE TABLE "${schema}".outbox (
      id text PRIMARY KEY, event_id text NOT NULL, audience text NOT NULL, channel text NOT NULL,
      notification jsonb NOT NULL, address jsonb,
      status text NOT NULL CHECK (status IN ('pending', 'delivered', 'dead_letter')),
      attempts integer NOT NULL DEFAULT 0, next_attempt_at_ms bigint, last_error text,
      delivered_at_ms bigint, claimed_until_ms bigint, seq bigserial NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`)
    const outbox = await createPostgresOutbox({ pool: poolA, schema })
    await outbox.enqueue([entry(1)], 0)
    const awaiting = {
      status: 'awaiting_receipt',
      attempts: 1,
      messageIds: ['m-1'],
      receiptDeadlineMs: 5_000,
      receipts: {},
    } as const
    await outbox.record(notification(1).id, awaiting)
    expect((await outbox.list())[0]?.state).toEqual(awaiting)
    await expect(poolA.query(`UPDATE "${schema}".outbox SET status = 'sent'`)).rejects.toThrow(
      /outbox_status_check/,
    )
  })

  it('refuses an unsafe schema name', async () => {
    await expect(createPostgresOutbox({ pool: poolA, schema: 'x"; drop table y; --' })).rejects.toThrow(
      'schema name',
    )
  })
})

describe('PostgreSQL preferences and used decision links', () => {
  it('stores practice and user preferences separately', async () => {
    const schema = freshSchema()
    const prefs = await createPostgresPreferences({ pool: poolA, schema })
    const practice = { kind: 'practice', practiceId: 'p1' as PracticeId } as const
    const user = { kind: 'user', userId: 'u1' as UserId } as const
    const value = {
      channels: { email: 'office@p1.test', webhook: 'https://hooks.p1.test/x' },
      webhookSecret: 'whsec_0123456789abcdef',
      quietHours: { start: '22:00', end: '07:00', timeZone: 'Europe/Berlin' },
    }
    await prefs.put(practice, value)
    expect(await prefs.get(practice)).toEqual(value)
    expect(await prefs.get(user)).toBeNull()
    await prefs.put(practice, { channels: { email: 'new@p1.test' } })
    expect(await prefs.get(practice)).toEqual({ channels: { email: 'new@p1.test' } })
    await prefs.remove(practice)
    expect(await prefs.get(practice)).toBeNull()
  })

  it('lets a decision link be used once across two processes', async () => {
    const schema = freshSchema()
    const clock = manualClock('2026-03-02T08:00:00.000Z' as Instant)
    const secret = 'pg-links-secret-0123456789abcdef-0123'
    const storeA = await createPostgresUsedLinks({ pool: poolA, schema })
    const storeB = await createPostgresUsedLinks({ pool: poolB, schema, migrate: false })
    const a = createDecisionLinks({ secret, clock, usedStore: storeA })
    const b = createDecisionLinks({ secret, clock, usedStore: storeB })
    const token = a.sign({
      referralId: 'r-1' as ReferralId,
      practiceId: 'spec-a' as PracticeId,
      action: 'decline',
      deliveryNo: 1,
    })
    const results = await Promise.all([a.verify(token), b.verify(token), a.verify(token), b.verify(token)])
    expect(results.filter((r) => r.ok)).toHaveLength(1)
    expect(results.filter((r) => !r.ok).map((r) => (r.ok ? null : r.reason))).toEqual([
      'used',
      'used',
      'used',
    ])
    clock.advance(13 * 3_600_000)
    expect(await storeA.purgeExpired(Date.parse(clock.now()))).toBe(1)
    expect(await b.verify(token)).toEqual({ ok: false, reason: 'expired' })
  })
})
