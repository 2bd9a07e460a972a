import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Notification } from './notification.js'
import { deliverDue, inMemoryOutbox } from './outbox.js'
import { type DeliveryState, type RetryPolicy, UNCERTAIN_REASON } from './retry.js'
import { type SmppOptions, smppChannel } from './sms.js'
import { type Smsc, startSmsc } from './testing/smsc.js'

// A submit_sm the SMSC takes but never answers (response lost, or connection cut before it): the
// text may have gone out, so the outbox must not resubmit it blindly.

const PHONE = '+15145550123'
const note = (
  id: string,
  text = 'New referral: #r-1. Open the referral list for details.',
): Notification => ({
  id,
  eventId: `evt-${id}`,
  kind: 'recipient.new_referral',
  audience: 'recipient',
  subject: '',
  text,
  payload: { referralId: 'r-1' },
})

/** An in-memory outbox wired like the service, with a test clock that receipts are stamped with. */
const harness = (channel: ReturnType<typeof smppChannel>, policy?: RetryPolicy) => {
  const outbox = inMemoryOutbox()
  let clock = 0
  const received: string[] = []
  channel.onReceipt((r) => {
    received.push(r.messageId)
    void outbox.recordReceipt('sms', r.messageId, r.stat, clock)
  })
  const channels = new Map([['sms', channel as never]])
  return {
    outbox,
    received,
    run: (nowMs: number) => {
      clock = nowMs
      return deliverDue({ outbox, channels, nowMs, ...(policy ? { policy } : {}) })
    },
    enqueue: (n: Notification) =>
      outbox.enqueue([{ notification: n, channel: 'sms', address: { phone: PHONE } }], 0),
    state: async (): Promise<DeliveryState | undefined> => (await outbox.list())[0]?.state,
  }
}

describe('an SMPP submit with no answer is uncertain, never resent blindly (real local SMSC)', () => {
  let smsc: Smsc
  const channels: ReturnType<typeof smppChannel>[] = []
  const channelFor = (overrides: Partial<SmppOptions> = {}) => {
    const c = smppChannel({
      url: smsc.url,
      systemId: 'referrals',
      password: 'pw',
      sourceAddr: 'REFERRALS',
      receiptTimeoutMs: 5_000,
      uncertainWindowMs: 60_000,
      submitTimeoutMs: 300,
      connectTimeoutMs: 2_000,
      ...overrides,
    })
    channels.push(c)
    return c
  }
  beforeAll(async () => {
    smsc = await startSmsc({ systemId: 'referrals', password: 'pw' })
  })
  afterEach(async () => {
    for (const c of channels.splice(0)) await c.close()
    smsc.submits.length = 0
    smsc.state.receipt = () => 'DELIVRD'
    smsc.state.answer = () => 'respond'
    smsc.state.echoReference = true
  })
  afterAll(() => smsc.close())

  it('parks a swallowed submit as uncertain and settles it by the receipt that echoes its user_message_reference: one text', async () => {
    smsc.state.answer = (n) => (n === 1 ? 'swallow' : 'respond')
    const h = harness(channelFor())
    await h.enqueue(note('swallow'))
    // The receipt (sent by the SMSC right after it took the message) arrives during the submit
    // timeout, so the same pass parks the entry as uncertain and then settles it by that receipt.
    expect(await h.run(0)).toEqual({
      delivered: 1,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 1,
    })
    expect(smsc.submits).toHaveLength(1)
    const ref = smsc.submits[0]?.pdu.user_message_reference
    expect(typeof ref).toBe('number')
    expect(h.received).toContain(`ref:${ref}`)
    expect(await h.state()).toEqual({ status: 'delivered', attempts: 1, deliveredAtMs: 0 })
    for (const nowMs of [30_000, 120_000]) await h.run(nowMs)
    expect(smsc.submits).toHaveLength(1)
  })

  it('without a matching receipt: nothing is resubmitted in the window, then it is dead-lettered for a person (default)', async () => {
    smsc.state.answer = () => 'swallow'
    smsc.state.echoReference = false // the SMSC's receipt carries only its own (unknown to us) message id
    const h = harness(channelFor())
    await h.enqueue(note('noecho'))
    expect((await h.run(0)).uncertain).toBe(1)
    await vi.waitFor(() => expect(h.received).toHaveLength(1), { timeout: 2_000, interval: 10 })
    expect(await h.state()).toEqual({
      status: 'uncertain',
      attempts: 1,
      messageIds: [`ref:${smsc.submits[0]?.pdu.user_message_reference}`],
      sinceMs: 0,
      receiptDeadlineMs: 60_000,
      receipts: {},
      lastError: 'SMPP submit_sm_resp timeout',
    })
    // Passes well after any retry backoff: not resent, still uncertain, the unknown-id receipt ignored.
    for (const nowMs of [30_000, 45_000, 59_999])
      expect(await h.run(nowMs)).toEqual({
        delivered: 0,
        retried: 0,
        deadLettered: 0,
        awaitingReceipt: 0,
        uncertain: 0,
      })
    expect(await h.state()).toMatchObject({ status: 'uncertain', receipts: {} })
    expect(smsc.submits).toHaveLength(1)
    expect(await h.run(60_000)).toMatchObject({ deadLettered: 1 })
    expect(await h.state()).toEqual({ status: 'dead_letter', attempts: 1, lastError: UNCERTAIN_REASON })
    await h.run(10_000_000)
    expect(smsc.submits).toHaveLength(1)
    expect(UNCERTAIN_REASON).not.toMatch(/\d{5}/)
  })

  it('with policy uncertain: resend, resubmits once after the window (the documented bound: one more text per window)', async () => {
    smsc.state.answer = (n) => (n === 1 ? 'swallow' : 'respond')
    smsc.state.echoReference = false
    const policy: RetryPolicy = {
      maxAttempts: 3,
      baseDelayMs: 1_000,
      factor: 2,
      maxDelayMs: 10_000,
      uncertain: 'resend',
    }
    const h = harness(channelFor(), policy)
    await h.enqueue(note('resend'))
    expect((await h.run(0)).uncertain).toBe(1)
    expect((await h.run(59_999)).retried).toBe(0)
    expect(smsc.submits).toHaveLength(1)
    // The window ends: pending at once, attempt count kept; the next pass submits again.
    expect((await h.run(60_000)).retried).toBe(1)
    expect(await h.state()).toEqual({
      status: 'pending',
      attempts: 1,
      nextAttemptAtMs: 60_000,
      lastError: 'SMPP submit_sm_resp timeout',
    })
    expect((await h.run(60_001)).awaitingReceipt).toBe(1)
    expect(smsc.submits).toHaveLength(2)
    await vi.waitFor(async () => expect((await h.run(61_000)).delivered).toBe(1), {
      timeout: 2_000,
      interval: 20,
    })
    expect(await h.state()).toEqual({ status: 'delivered', attempts: 2, deliveredAtMs: 61_000 })
    expect(smsc.submits.map((s) => s.message)).toEqual([note('x').text, note('x').text])
  })

  it('a connection cut after the submit is uncertain at once (not a retry); a later receipt on the new session settles it', async () => {
    smsc.state.answer = (n) => (n === 1 ? 'drop' : 'respond')
    smsc.state.receipt = () => null
    const channel = channelFor({ submitTimeoutMs: 60_000 })
    const h = harness(channel)
    await h.enqueue(note('drop'))
    const started = Date.now()
    expect((await h.run(0)).uncertain).toBe(1)
    expect(Date.now() - started).toBeLessThan(30_000) // did not wait for the 60 s submit timeout
    const ref = smsc.submits[0]?.pdu.user_message_reference
    expect(await h.state()).toMatchObject({
      status: 'uncertain',
      messageIds: [`ref:${ref}`],
      lastError: 'SMPP connection closed before submit_sm_resp',
    })
    // Another message rebinds; the SMSC then reports the first one's receipt on the new session.
    await h.outbox.enqueue([{ notification: note('other'), channel: 'sms', address: { phone: PHONE } }], 0)
    expect((await h.run(1_000)).awaitingReceipt).toBe(1)
    smsc.sendReceipt(1, 'DELIVRD')
    await vi.waitFor(() => expect(h.received).toContain(`ref:${ref}`), { timeout: 2_000, interval: 10 })
    expect((await h.run(2_000)).delivered).toBe(1)
    expect((await h.outbox.list())[0]?.state).toEqual({
      status: 'delivered',
      attempts: 1,
      deliveredAtMs: 2_000,
    })
    // The dropped message was submitted once; the other once.
    expect(smsc.submits).toHaveLength(2)
  })

  it('a failed receipt for an uncertain submit follows the retry policy (the carrier says it did not arrive)', async () => {
    smsc.state.answer = (n) => (n === 1 ? 'swallow' : 'respond')
    smsc.state.receipt = (n) => (n === 1 ? 'EXPIRED' : 'DELIVRD')
    const h = harness(channelFor())
    await h.enqueue(note('expired'))
    expect(await h.run(0)).toMatchObject({ uncertain: 1, retried: 1 })
    expect(h.received).toContain(`ref:${smsc.submits[0]?.pdu.user_message_reference}`)
    expect(await h.state()).toMatchObject({
      status: 'pending',
      attempts: 1,
      lastError: 'SMPP receipt stat:EXPIRED',
    })
  })

  it('ignores a receipt with the same 16-bit reference recorded before the uncertain submit (a stale one)', async () => {
    smsc.state.answer = () => 'swallow'
    smsc.state.receipt = () => null
    const h = harness(channelFor())
    await h.enqueue(note('stale'))
    await h.run(5_000)
    const state = await h.state()
    const key = state?.status === 'uncertain' ? state.messageIds[0] : undefined
    expect(key).toMatch(/^ref:\d+$/)
    await h.outbox.recordReceipt('sms', key ?? '', 'DELIVRD', 4_999)
    expect(await h.run(6_000)).toMatchObject({ delivered: 0 })
    expect(await h.state()).toMatchObject({ status: 'uncertain', receipts: {} })
    await h.outbox.recordReceipt('sms', key ?? '', 'DELIVRD', 5_000)
    expect(await h.run(6_000)).toMatchObject({ delivered: 1 })
  })

  it('a multi-part text whose second part is unanswered waits for both parts’ receipts', async () => {
    smsc.state.answer = (n) => (n === 2 ? 'swallow' : 'respond')
    const h = harness(channelFor())
    await h.enqueue(note('parts', 'p'.repeat(200)))
    smsc.state.receipt = () => null
    expect((await h.run(0)).uncertain).toBe(1)
    expect(smsc.submits).toHaveLength(2)
    const [first, second] = smsc.submits
    const key = `ref:${second?.pdu.user_message_reference}`
    expect(await h.state()).toMatchObject({ status: 'uncertain', messageIds: [first?.messageId, key] })
    // Only one part's receipt: still uncertain.
    await h.outbox.recordReceipt('sms', key, 'DELIVRD', 10)
    expect((await h.run(1_000)).delivered).toBe(0)
    await h.outbox.recordReceipt('sms', first?.messageId ?? '', 'DELIVRD', 10)
    expect((await h.run(1_000)).delivered).toBe(1)
    expect(smsc.submits).toHaveLength(2)
  })
})
