import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Notification } from './notification.js'
import { deliverDue, inMemoryOutbox } from './outbox.js'
import { type DeliveryState, NO_RECEIPT_REASON, type RetryPolicy } from './retry.js'
import { type SmppOptions, smppChannel } from './sms.js'
import { type Smsc, startSmsc as startLocalSmsc } from './testing/smsc.js'

const SYSTEM_ID = 'referrals'
const PASSWORD = 'pw-0123'
const PHONE = '+15145550123'

const startSmsc = (port = 0) => startLocalSmsc({ systemId: SYSTEM_ID, password: PASSWORD, port })

const note = (id: string, text: string): Notification => ({
  id,
  eventId: `evt-${id}`,
  kind: 'recipient.new_referral',
  audience: 'recipient',
  subject: '',
  text,
  payload: { referralId: 'r-1' },
})

/**
 * An in-memory outbox wired like the service: the channel's delivery receipts go to
 * `recordReceipt`. `pass(nowMs)` runs one delivery pass, waits until every message awaiting a
 * receipt has all of its receipts (at most `waitMs`, then gives up: a missing receipt), and runs a
 * second pass at the same time to settle them.
 */
const harness = (channel: ReturnType<typeof smppChannel>, policy?: RetryPolicy) => {
  const outbox = inMemoryOutbox()
  channel.onReceipt((r) => {
    void outbox.recordReceipt('sms', r.messageId, r.stat, 0)
  })
  const channels = new Map([['sms', channel as never]])
  const run = (nowMs: number) => deliverDue({ outbox, channels, nowMs, ...(policy ? { policy } : {}) })
  const receiptsIn = async (waitMs: number) => {
    const until = Date.now() + waitMs
    while (Date.now() < until) {
      const waiting = (await outbox.list({ status: 'awaiting_receipt' })).filter(
        (e) =>
          e.state.status === 'awaiting_receipt' &&
          e.state.messageIds.some((id) => !(e.state.status === 'awaiting_receipt' && id in e.state.receipts)),
      )
      if (waiting.length === 0) return
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  return {
    outbox,
    run,
    pass: async (nowMs: number, waitMs = 1_000) => {
      const first = await run(nowMs)
      if (first.awaitingReceipt > 0) await receiptsIn(waitMs)
      const second = await run(nowMs)
      return {
        delivered: first.delivered + second.delivered,
        retried: first.retried + second.retried,
        deadLettered: first.deadLettered + second.deadLettered,
        awaitingReceipt: first.awaitingReceipt,
        uncertain: first.uncertain + second.uncertain,
      }
    },
    enqueue: (notification: Notification) =>
      outbox.enqueue([{ notification, channel: 'sms', address: { phone: PHONE } }], 0),
    state: async (): Promise<DeliveryState | undefined> => (await outbox.list())[0]?.state,
  }
}

/** Queues one SMS, runs a settled delivery pass at each time of `passes` and answers the entry's state. */
const deliverOnce = async (
  channel: ReturnType<typeof smppChannel>,
  notification: Notification,
  passes: readonly number[] = [0],
  waitMs = 1_000,
): Promise<DeliveryState | undefined> => {
  const h = harness(channel)
  await h.enqueue(notification)
  for (const nowMs of passes) await h.pass(nowMs, waitMs)
  return h.state()
}

describe('SMS over SMPP against a real local SMSC (smpp server)', () => {
  let smsc: Smsc
  const channels: ReturnType<typeof smppChannel>[] = []
  const channelFor = (overrides: Partial<SmppOptions> = {}) => {
    const c = smppChannel({
      url: smsc.url,
      systemId: SYSTEM_ID,
      password: PASSWORD,
      sourceAddr: 'REFERRALS',
      receiptTimeoutMs: 2_000,
      connectTimeoutMs: 2_000,
      ...overrides,
    })
    channels.push(c)
    return c
  }

  beforeAll(async () => {
    smsc = await startSmsc()
  })
  afterEach(async () => {
    for (const c of channels.splice(0)) await c.close()
    smsc.binds.length = 0
    smsc.submits.length = 0
    smsc.state.receipt = () => 'DELIVRD'
    smsc.state.submitStatus = () => 0
  })
  afterAll(() => smsc.close())

  it('binds as a transceiver with the configured credentials once and submits GSM-7 with a receipt requested', async () => {
    const channel = channelFor()
    const text = 'New referral: #r-1. Open the referral list for details.'
    expect(await deliverOnce(channel, note('a', text))).toMatchObject({ status: 'delivered', attempts: 1 })
    expect(await deliverOnce(channel, note('b', 'Reminder: #r-1'))).toMatchObject({ status: 'delivered' })
    expect(smsc.binds).toEqual([{ systemId: SYSTEM_ID, password: PASSWORD }])
    expect(smsc.submits).toHaveLength(2)
    const first = smsc.submits[0]
    expect(first?.pdu).toMatchObject({
      source_addr: 'REFERRALS',
      destination_addr: '15145550123',
      dest_addr_ton: 1,
      dest_addr_npi: 1,
      registered_delivery: 1,
      data_coding: 0,
      esm_class: 0,
    })
    expect(first?.message).toBe(text)
    expect(first?.udh).toBeUndefined()
  })

  it('splits long GSM-7 text into parts of at most 153 septets with a shared concatenation UDH', async () => {
    const channel = channelFor()
    // 150 + 2×2 (escaped braces) + 20 = 174 septets: the second brace would make the first part 154.
    const text = `${'a'.repeat(150)}{}${'b'.repeat(20)}`
    expect(await deliverOnce(channel, note('long', text))).toMatchObject({ status: 'delivered' })
    expect(smsc.submits.map((s) => s.message)).toEqual([`${'a'.repeat(150)}{`, `}${'b'.repeat(20)}`])
    const [p1, p2] = smsc.submits
    const ref = p1?.udh?.[0]?.[2]
    expect(p1?.udh).toEqual([[0x00, 0x03, ref, 2, 1]])
    expect(p2?.udh).toEqual([[0x00, 0x03, ref, 2, 2]])
    for (const s of smsc.submits)
      expect(s.pdu).toMatchObject({ esm_class: 0x40, data_coding: 0, registered_delivery: 1 })

    smsc.submits.length = 0
    expect(await deliverOnce(channel, note('long3', 'c'.repeat(400)))).toMatchObject({ status: 'delivered' })
    expect(smsc.submits.map((s) => s.message.length)).toEqual([153, 153, 94])
    expect(smsc.submits.map((s) => s.udh?.[0]?.slice(3))).toEqual([
      [3, 1],
      [3, 2],
      [3, 3],
    ])
    // A new message gets a new concatenation reference.
    expect(smsc.submits[0]?.udh?.[0]?.[2]).not.toBe(ref)
  })

  it('sends non-GSM text as UCS-2 (data_coding 8), 70 characters in one message, 67 per part', async () => {
    const channel = channelFor()
    expect(await deliverOnce(channel, note('u1', 'Référence façon ç'))).toMatchObject({ status: 'delivered' })
    expect(smsc.submits[0]?.pdu).toMatchObject({ data_coding: 8, esm_class: 0 })
    expect(smsc.submits[0]?.message).toBe('Référence façon ç')
    smsc.submits.length = 0
    expect(await deliverOnce(channel, note('u2', 'ж'.repeat(100)))).toMatchObject({ status: 'delivered' })
    expect(smsc.submits.map((s) => s.message)).toEqual(['ж'.repeat(67), 'ж'.repeat(33)])
    for (const s of smsc.submits) expect(s.pdu).toMatchObject({ data_coding: 8, esm_class: 0x40 })
  })

  it('maps delivery receipts to the outbox: DELIVRD delivered, UNDELIV dead letter, EXPIRED retried then delivered', async () => {
    const channel = channelFor()
    smsc.state.receipt = () => 'UNDELIV'
    expect(await deliverOnce(channel, note('undeliv', 'Referral update: #r-1'))).toEqual({
      status: 'dead_letter',
      attempts: 1,
      lastError: 'SMPP receipt stat:UNDELIV',
    })
    // Failing, then recovering: the first attempt expires at the SMSC, the retry is delivered.
    smsc.state.receipt = (n) => (n === 2 ? 'EXPIRED' : 'DELIVRD')
    const h = harness(channel)
    await h.enqueue(note('exp', 'Referral update: #r-2'))
    expect(await h.pass(0)).toEqual({
      delivered: 0,
      retried: 1,
      deadLettered: 0,
      awaitingReceipt: 1,
      uncertain: 0,
    })
    expect(await h.state()).toEqual({
      status: 'pending',
      attempts: 1,
      nextAttemptAtMs: 30_000,
      lastError: 'SMPP receipt stat:EXPIRED',
    })
    expect(await h.pass(30_000)).toEqual({
      delivered: 1,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 1,
      uncertain: 0,
    })
    expect(await h.state()).toMatchObject({ status: 'delivered', attempts: 2 })
    expect(smsc.submits).toHaveLength(3)
  })

  it('dead-letters a multi-part message when one part is undeliverable', async () => {
    smsc.state.receipt = (n) => (n === 2 ? 'UNDELIV' : 'DELIVRD')
    expect(await deliverOnce(channelFor(), note('mp', 'e'.repeat(200)))).toMatchObject({
      status: 'dead_letter',
      lastError: 'SMPP receipt stat:UNDELIV',
    })
    expect(smsc.submits).toHaveLength(2)
  })

  it('retries when the SMSC throttles; dead-letters a rejected destination', async () => {
    smsc.state.receipt = () => 'DELIVRD'
    smsc.state.submitStatus = () => 0x58 // ESME_RTHROTTLED
    expect(await deliverOnce(channelFor(), note('th', 'x'))).toMatchObject({
      status: 'pending',
      lastError: 'SMPP submit_sm status 0x58',
    })
    smsc.state.submitStatus = () => 0x0b // ESME_RINVDSTADR
    expect(await deliverOnce(channelFor(), note('bad', 'x'))).toMatchObject({
      status: 'dead_letter',
      lastError: 'SMPP submit_sm status 0x0b',
    })
  })

  it('records a submitted message as awaiting its receipt and never submits it again: no receipt ends unconfirmed', async () => {
    smsc.state.receipt = () => null
    const h = harness(channelFor({ receiptTimeoutMs: 120_000 }))
    await h.enqueue(note('nr', 'Referral update: #r-3'))
    expect(await h.run(0)).toEqual({
      delivered: 0,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 1,
      uncertain: 0,
    })
    const awaiting = await h.state()
    expect(awaiting).toEqual({
      status: 'awaiting_receipt',
      attempts: 1,
      messageIds: [smsc.submits[0]?.messageId],
      receiptDeadlineMs: 120_000,
      receipts: {},
    })
    // Passes long after any backoff delay: nothing is resent while the receipt is awaited.
    for (const nowMs of [30_000, 60_000, 119_999])
      expect(await h.run(nowMs)).toEqual({
        delivered: 0,
        retried: 0,
        deadLettered: 0,
        awaitingReceipt: 0,
        uncertain: 0,
      })
    expect(smsc.submits).toHaveLength(1)
    // The deadline: a clear terminal state, not a resend.
    expect(await h.run(120_000)).toEqual({
      delivered: 0,
      retried: 0,
      deadLettered: 1,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect(await h.state()).toEqual({ status: 'dead_letter', attempts: 1, lastError: NO_RECEIPT_REASON })
    expect(NO_RECEIPT_REASON).toBe('SMPP no delivery receipt (submitted, not resent)')
    // A receipt after the deadline changes nothing.
    smsc.sendReceipt(1, 'DELIVRD')
    await new Promise((resolve) => setTimeout(resolve, 100))
    await h.run(200_000)
    expect(await h.state()).toMatchObject({ status: 'dead_letter' })
    expect(smsc.submits).toHaveLength(1)
  })

  it('settles a message when its receipt comes later, on a later pass, with no second submit', async () => {
    smsc.state.receipt = () => null
    const h = harness(channelFor())
    await h.enqueue(note('late', 'e'.repeat(200))) // two parts: both receipts are needed
    expect((await h.run(0)).awaitingReceipt).toBe(1)
    const receipts = async () => {
      const state = await h.state()
      return state?.status === 'awaiting_receipt' ? state.receipts : {}
    }
    smsc.sendReceipt(1, 'DELIVRD')
    await vi.waitFor(
      async () => expect(await receipts()).toEqual({ [smsc.submits[0]?.messageId ?? '']: 'DELIVRD' }),
      { timeout: 2_000, interval: 10 },
    )
    // One part confirmed, one missing: still waiting.
    expect(await h.run(1_000)).toEqual({
      delivered: 0,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect(await h.state()).toMatchObject({ status: 'awaiting_receipt' })
    smsc.sendReceipt(2, 'DELIVRD')
    await vi.waitFor(async () => expect(Object.keys(await receipts())).toHaveLength(2), {
      timeout: 2_000,
      interval: 10,
    })
    expect(await h.run(1_500)).toEqual({
      delivered: 1,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect(await h.state()).toEqual({ status: 'delivered', attempts: 1, deliveredAtMs: 1_500 })
    expect(smsc.submits).toHaveLength(2)
  })

  it('retries a failed receipt per the policy and dead-letters it when the attempts are spent', async () => {
    smsc.state.receipt = () => 'EXPIRED'
    const policy: RetryPolicy = { maxAttempts: 2, baseDelayMs: 1_000, factor: 2, maxDelayMs: 10_000 }
    const h = harness(channelFor(), policy)
    await h.enqueue(note('exp2', 'Referral update: #r-4'))
    expect(await h.pass(0)).toMatchObject({ retried: 1 })
    expect(await h.state()).toEqual({
      status: 'pending',
      attempts: 1,
      nextAttemptAtMs: 1_000,
      lastError: 'SMPP receipt stat:EXPIRED',
    })
    expect(await h.pass(1_000)).toMatchObject({ deadLettered: 1 })
    expect(await h.state()).toEqual({
      status: 'dead_letter',
      attempts: 2,
      lastError: 'SMPP receipt stat:EXPIRED',
    })
    // One submit per attempt, none after the dead letter.
    await h.pass(60_000)
    expect(smsc.submits).toHaveLength(2)
  })

  it('reports a wrong password as a bind failure (retried, no number, text or password in the error)', async () => {
    const text = 'Reminder: #r-1'
    const state = await deliverOnce(channelFor({ password: 'wrong-pw' }), note('pw', text))
    expect(state).toEqual({
      status: 'pending',
      attempts: 1,
      nextAttemptAtMs: 30_000,
      lastError: 'SMPP bind failed: invalid password (0x0e)',
    })
    expect(smsc.binds).toEqual([{ systemId: SYSTEM_ID, password: 'wrong-pw' }])
    expect(smsc.submits).toEqual([])
    const error = JSON.stringify(state)
    for (const secret of ['5145550123', text, 'wrong-pw', PASSWORD]) expect(error).not.toContain(secret)
  })

  it('retries while the SMSC is unavailable and delivers once it is back', async () => {
    // A port nothing listens on (taken from a closed socket), then an SMSC started on it.
    const probe = createNetServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const channel = channelFor({ url: `smpp://127.0.0.1:${port}` })
    const h = harness(channel)
    await h.enqueue(note('down', 'x'))
    expect((await h.pass(0)).retried).toBe(1)
    expect(await h.state()).toMatchObject({
      status: 'pending',
      lastError: 'SMPP connection failed',
    })
    const later = await startSmsc(port)
    try {
      expect((await h.pass(30_000)).delivered).toBe(1)
      expect(later.submits).toHaveLength(1)
    } finally {
      await channel.close()
      await later.close()
    }
  })
})
