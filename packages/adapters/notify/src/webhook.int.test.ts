import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type StreamId, unsafeId } from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Notification } from './notification.js'
import { deliverDue, inMemoryOutbox } from './outbox.js'
import { inMemoryPreferences } from './preferences.js'
import { createOutboxProjector } from './projector.js'
import { EVENT_ID_HEADER, SIGNATURE_HEADER, verifyWebhookSignature, webhookChannel } from './webhook.js'

const SECRET = 'whsec_test_0123456789abcdef0123456789'
const notification: Notification = {
  id: 'evt-1:recipient:webhook',
  eventId: 'evt-1',
  kind: 'referral.new',
  audience: 'recipient',
  subject: 'New referral',
  text: 'A new referral is waiting for you.',
  payload: { referralId: 'r-1' },
}

interface Received {
  readonly body: string
  readonly signature: string | undefined
  readonly eventId: string | undefined
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
  })

describe('webhook delivery against a local receiver', () => {
  let server: Server
  let url: string
  let failuresLeft = 0
  let permanentFailure = false
  const received: Received[] = []

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const body = await readBody(req)
      if (permanentFailure) {
        res.writeHead(500).end()
        return
      }
      if (failuresLeft > 0) {
        failuresLeft--
        res.writeHead(503).end()
        return
      }
      received.push({
        body,
        signature: req.headers[SIGNATURE_HEADER] as string | undefined,
        eventId: req.headers[EVENT_ID_HEADER] as string | undefined,
      })
      res.writeHead(204).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('retries failed attempts with backoff, delivers once, with a verifiable signature', async () => {
    failuresLeft = 2
    received.length = 0
    const outbox = inMemoryOutbox()
    const channels = new Map([['webhook', webhookChannel({ nowSeconds: () => 1_000 }) as never]])
    await outbox.enqueue([{ notification, channel: 'webhook', address: { url, secret: SECRET } }], 0)
    // The same notification derived twice (e.g. after a crash) is queued once.
    await outbox.enqueue([{ notification, channel: 'webhook', address: { url, secret: SECRET } }], 0)

    const first = await deliverDue({ outbox, channels, nowMs: 0 })
    expect(first).toEqual({ delivered: 0, retried: 1, deadLettered: 0, awaitingReceipt: 0, uncertain: 0 })
    // Not due again before the backoff delay (30 s for the first failure).
    expect(await deliverDue({ outbox, channels, nowMs: 29_999 })).toEqual({
      delivered: 0,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect(await deliverDue({ outbox, channels, nowMs: 30_000 })).toEqual({
      delivered: 0,
      retried: 1,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    // Second failure doubles the delay: due at 30 s + 60 s.
    expect(await deliverDue({ outbox, channels, nowMs: 89_999 })).toEqual({
      delivered: 0,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect(await deliverDue({ outbox, channels, nowMs: 90_000 })).toEqual({
      delivered: 1,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect(await deliverDue({ outbox, channels, nowMs: 10_000_000 })).toEqual({
      delivered: 0,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })

    expect(received).toHaveLength(1)
    const [delivery] = received
    expect(delivery?.eventId).toBe('evt-1')
    expect(JSON.parse(delivery?.body ?? '{}')).toMatchObject({ eventId: 'evt-1', kind: 'referral.new' })
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        header: delivery?.signature,
        body: delivery?.body ?? '',
        nowSeconds: 1_010,
      }),
    ).toEqual({ valid: true })
    expect(
      verifyWebhookSignature({
        secret: 'another-secret',
        header: delivery?.signature,
        body: delivery?.body ?? '',
        nowSeconds: 1_010,
      }).valid,
    ).toBe(false)
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        header: delivery?.signature,
        body: `${delivery?.body} `,
        nowSeconds: 1_010,
      }).valid,
    ).toBe(false)
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        header: delivery?.signature,
        body: delivery?.body ?? '',
        nowSeconds: 5_000,
      }),
    ).toEqual({ valid: false, reason: 'timestamp outside tolerance' })
    const [entry] = await outbox.list()
    expect(entry?.state).toMatchObject({ status: 'delivered', attempts: 3 })
  })

  it('dead-letters after the retry budget and keeps the entry visible', async () => {
    permanentFailure = true
    const outbox = inMemoryOutbox()
    const channels = new Map([['webhook', webhookChannel() as never]])
    await outbox.enqueue([{ notification, channel: 'webhook', address: { url, secret: SECRET } }], 0)
    const policy = { maxAttempts: 3, baseDelayMs: 10, factor: 2, maxDelayMs: 1_000 }
    let now = 0
    for (let i = 0; i < 3; i++) {
      await deliverDue({ outbox, channels, nowMs: now, policy })
      now += 1_000
    }
    const dead = await outbox.list({ status: 'dead_letter' })
    expect(dead).toHaveLength(1)
    expect(dead[0]?.state).toEqual({ status: 'dead_letter', attempts: 3, lastError: 'HTTP 500' })
    permanentFailure = false
  })

  it('delivers notifications derived from committed events through the outbox, retried and signed', async () => {
    received.length = 0
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    const outbox = inMemoryOutbox()
    const preferences = inMemoryPreferences()
    await preferences.put(
      { kind: 'practice', practiceId: a },
      { channels: { webhook: url }, webhookSecret: SECRET },
    )
    const projector = createOutboxProjector({
      store: w.store,
      engine: w.engine,
      outbox,
      preferences,
      clock: w.clock,
    })
    await projector.start().caughtUp()
    await w.send('wh-1', { kind: 'direct', practiceId: a })
    await projector.start().caughtUp()
    await projector.stop()
    const channels = new Map([['webhook', webhookChannel({ nowSeconds: () => 2_000 })]])
    const t0 = Date.parse(w.clock.now())

    failuresLeft = 2
    const policy = { maxAttempts: 5, baseDelayMs: 1_000, factor: 2, maxDelayMs: 60_000 }
    expect((await deliverDue({ outbox, channels, nowMs: t0, policy })).retried).toBe(1)
    expect((await deliverDue({ outbox, channels, nowMs: t0 + 1_000, policy })).retried).toBe(1)
    expect((await deliverDue({ outbox, channels, nowMs: t0 + 3_000, policy })).delivered).toBe(1)
    expect(await deliverDue({ outbox, channels, nowMs: t0 + 1_000_000, policy })).toEqual({
      delivered: 0,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })

    expect(received).toHaveLength(1)
    const [delivery] = received
    const stored = await w.store.readStream(unsafeId<StreamId>('referral-wh-1'))()
    const deliveredEvent =
      stored._tag === 'Right' ? stored.right.find((e) => e.type === 'ReferralDelivered') : undefined
    expect(delivery?.eventId).toBe(deliveredEvent?.id)
    const body = JSON.parse(delivery?.body ?? '{}')
    expect(body).toMatchObject({
      eventId: deliveredEvent?.id,
      kind: 'recipient.new_referral',
      payload: { referralId: 'wh-1', preferredProvider: true, deliveryNo: 1 },
    })
    expect(body.text).toContain('New referral for you (preferred provider) wh-1')
    expect(delivery?.body).not.toMatch(/canary|HN-wh-1/i)
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        header: delivery?.signature,
        body: delivery?.body ?? '',
        nowSeconds: 2_001,
      }),
    ).toEqual({ valid: true })
  })

  it('dead-letters an outbox notification the receiver keeps refusing', async () => {
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    const outbox = inMemoryOutbox()
    const preferences = inMemoryPreferences()
    await preferences.put(
      { kind: 'practice', practiceId: a },
      { channels: { webhook: url }, webhookSecret: SECRET },
    )
    const projector = createOutboxProjector({
      store: w.store,
      engine: w.engine,
      outbox,
      preferences,
      clock: w.clock,
    })
    await w.send('wh-2', { kind: 'direct', practiceId: a })
    await projector.start().caughtUp()
    await projector.stop()
    permanentFailure = true
    const channels = new Map([['webhook', webhookChannel()]])
    const t0 = Date.parse(w.clock.now())
    const policy = { maxAttempts: 2, baseDelayMs: 10, factor: 2, maxDelayMs: 100 }
    await deliverDue({ outbox, channels, nowMs: t0, policy })
    await deliverDue({ outbox, channels, nowMs: t0 + 1_000, policy })
    permanentFailure = false
    const dead = await outbox.list({ status: 'dead_letter' })
    expect(dead.map((e) => [e.notification.kind, e.state])).toEqual([
      ['recipient.new_referral', { status: 'dead_letter', attempts: 2, lastError: 'HTTP 500' }],
    ])
  })

  it('treats an unreachable receiver as retryable', async () => {
    const result = await webhookChannel({ timeoutMs: 2_000 }).deliver(notification, {
      url: 'http://127.0.0.1:1/unreachable',
      secret: SECRET,
    })
    expect(result).toEqual({ ok: false, retryable: true, reason: 'connection failed' })
  })
})
