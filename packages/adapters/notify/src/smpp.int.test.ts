import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Notification } from './notification.js'
import { deliverDue, inMemoryOutbox } from './outbox.js'
import type { DeliveryState } from './retry.js'
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

/** Queues one SMS, runs one delivery pass at `nowMs` and answers the entry's state. */
const deliverOnce = async (
  channel: ReturnType<typeof smppChannel>,
  notification: Notification,
  passes: readonly number[] = [0],
): Promise<DeliveryState | undefined> => {
  const outbox = inMemoryOutbox()
  await outbox.enqueue([{ notification, channel: 'sms', address: { phone: PHONE } }], 0)
  const channels = new Map([['sms', channel as never]])
  for (const nowMs of passes) await deliverDue({ outbox, channels, nowMs })
  return (await outbox.list())[0]?.state
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
    const outbox = inMemoryOutbox()
    await outbox.enqueue(
      [{ notification: note('exp', 'Referral update: #r-2'), channel: 'sms', address: { phone: PHONE } }],
      0,
    )
    const map = new Map([['sms', channel as never]])
    expect(await deliverDue({ outbox, channels: map, nowMs: 0 })).toEqual({
      delivered: 0,
      retried: 1,
      deadLettered: 0,
    })
    expect((await outbox.list())[0]?.state).toEqual({
      status: 'pending',
      attempts: 1,
      nextAttemptAtMs: 30_000,
      lastError: 'SMPP receipt stat:EXPIRED',
    })
    expect(await deliverDue({ outbox, channels: map, nowMs: 30_000 })).toEqual({
      delivered: 1,
      retried: 0,
      deadLettered: 0,
    })
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

  it('retries when no receipt arrives in time or the SMSC throttles; dead-letters a rejected destination', async () => {
    smsc.state.receipt = () => null
    expect(await deliverOnce(channelFor({ receiptTimeoutMs: 150 }), note('nr', 'x'))).toMatchObject({
      status: 'pending',
      lastError: 'SMPP no delivery receipt',
    })
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
    const outbox = inMemoryOutbox()
    await outbox.enqueue([{ notification: note('down', 'x'), channel: 'sms', address: { phone: PHONE } }], 0)
    const map = new Map([['sms', channel as never]])
    expect((await deliverDue({ outbox, channels: map, nowMs: 0 })).retried).toBe(1)
    expect((await outbox.list())[0]?.state).toMatchObject({
      status: 'pending',
      lastError: 'SMPP connection failed',
    })
    const later = await startSmsc(port)
    try {
      expect((await deliverDue({ outbox, channels: map, nowMs: 30_000 })).delivered).toBe(1)
      expect(later.submits).toHaveLength(1)
    } finally {
      await channel.close()
      await later.close()
    }
  })
})
