import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  type EventStore,
  type Instant,
  manualClock,
  millisOf,
  type PracticeId,
  type ReferralId,
  readAllEvents,
  type StoredEvent,
  unsafeId,
} from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import { SIGNATURE_HEADER, verifyWebhookSignature } from '@referrals/notify'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { openRuntime } from '../server.js'
import { testConfig } from '../testing.js'
import { type Notifications, startNotifications } from './start.js'

/** Every stored event, in global order. */
const eventsOf = async (store: EventStore): Promise<StoredEvent[]> => {
  const events: StoredEvent[] = []
  for await (const event of readAllEvents(store)) events.push(event)
  return events
}

const WEBHOOK_SECRET = 'whsec_start_test_0123456789'
const MASTER_KEY = Buffer.alloc(32, 7).toString('base64')
const HOUR = 3_600_000

interface Received {
  readonly kind: string
  readonly text: string
  readonly body: string
  readonly signature: string | undefined
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
  })

describe('startNotifications on the in-memory runtime', () => {
  let server: Server
  let url: string
  const received: Received[] = []
  let notifications: Notifications | undefined

  beforeEach(async () => {
    received.length = 0
    server = createServer(async (req, res) => {
      const body = await readBody(req)
      const parsed = JSON.parse(body) as { kind: string; text: string }
      received.push({
        kind: parsed.kind,
        text: parsed.text,
        body,
        signature: req.headers[SIGNATURE_HEADER] as string | undefined,
      })
      res.writeHead(204).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  })
  afterEach(async () => {
    await notifications?.stop()
    notifications = undefined
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  it('issues the 24 h reminder when time advances and delivers it as a signed webhook to a local receiver', async () => {
    const world = await createWorld()
    const specA = await world.addSpecialist('spec-a', 1)
    const config = testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY })
    notifications = await startNotifications(
      { config, store: world.store, engine: world.engine },
      {
        clock: world.clock,
        env: {
          NOTIFY_WEBHOOK_SECRET: WEBHOOK_SECRET,
          NOTIFY_ALLOW_PRIVATE_WEBHOOKS: 'true',
          PUBLIC_BASE_URL: 'https://referrals.example/app',
        },
        schedulerIntervalMs: 10,
        deliveryIntervalMs: 10,
      },
    )
    expect(notifications.settings.smtp).toBeUndefined()
    await notifications.preferences.put(
      { kind: 'practice', practiceId: specA },
      { channels: { webhook: url } },
    )

    await world.send('r-1')
    await vi.waitFor(() => expect(received.map((r) => r.kind)).toContain('recipient.new_referral'), {
      timeout: 5_000,
      interval: 20,
    })
    expect(received.map((r) => r.kind)).not.toContain('recipient.reminder')

    world.clock.advance(24 * HOUR + 60_000)
    await vi.waitFor(() => expect(received.map((r) => r.kind)).toContain('recipient.reminder'), {
      timeout: 5_000,
      interval: 20,
    })
    const reminders = (await eventsOf(world.store)).filter((e) => e.type === 'ResponseReminderIssued')
    expect(reminders).toHaveLength(1)
    expect(reminders[0]?.metadata.actor).toEqual({ kind: 'system', component: 'scheduler' })

    const reminder = received.find((r) => r.kind === 'recipient.reminder')
    expect(
      verifyWebhookSignature({
        secret: WEBHOOK_SECRET,
        header: reminder?.signature,
        body: reminder?.body ?? '',
        nowSeconds: Math.floor(millisOf(world.clock.now()) / 1000),
      }),
    ).toEqual({ valid: true })
    // The message carries accept/decline links to this service's public address.
    expect(reminder?.text).toMatch(/Accept: https:\/\/referrals\.example\/app\/decision-links\?token=v1\./)
    expect(reminder?.text).not.toContain('Canary')

    // More ticks do not issue or deliver the reminder again.
    const count = received.length
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(received.length).toBe(count)
    expect((await eventsOf(world.store)).filter((e) => e.type === 'ResponseReminderIssued')).toHaveLength(1)
    expect(await world.holderOf('r-1')).toBe(specA)
  })

  it("delivers to a practice's Slack incoming webhook (Block Kit, minimal fields, decision buttons) through the same address policy", async () => {
    const world = await createWorld()
    const specA = await world.addSpecialist('spec-a', 1)
    notifications = await startNotifications(
      { config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), store: world.store, engine: world.engine },
      {
        clock: world.clock,
        env: { NOTIFY_ALLOW_PRIVATE_WEBHOOKS: 'true', PUBLIC_BASE_URL: 'https://referrals.example/app' },
        schedulerIntervalMs: 10,
        deliveryIntervalMs: 10,
      },
    )
    await notifications.preferences.put(
      { kind: 'practice', practiceId: specA },
      { channels: { slack: url.replace('/hook', '/slack') } },
    )
    await world.send('r-9')
    await vi.waitFor(() => expect(received.length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 })
    const message = JSON.parse(received[0]?.body ?? '{}') as {
      text: string
      blocks: { type: string; elements?: { url: string }[] }[]
    }
    expect(message.text).toBe('New referral #r-9')
    const buttons = message.blocks.find((b) => b.type === 'actions')?.elements ?? []
    expect(
      buttons.map((b) => b.url.startsWith('https://referrals.example/app/decision-links?token=v1.')),
    ).toEqual([true, true])
    expect(received[0]?.body).not.toContain('Canary')
  })

  it("delivers to a practice's Teams incoming webhook (an Adaptive Card, minimal facts, decision buttons) through the same address policy", async () => {
    const world = await createWorld()
    const specA = await world.addSpecialist('spec-a', 1)
    notifications = await startNotifications(
      { config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), store: world.store, engine: world.engine },
      {
        clock: world.clock,
        env: { NOTIFY_ALLOW_PRIVATE_WEBHOOKS: 'true', PUBLIC_BASE_URL: 'https://referrals.example/app' },
        schedulerIntervalMs: 10,
        deliveryIntervalMs: 10,
      },
    )
    await notifications.preferences.put(
      { kind: 'practice', practiceId: specA },
      { channels: { teams: url.replace('/hook', '/teams') } },
    )
    await world.send('r-8')
    await vi.waitFor(() => expect(received.length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 })
    const message = JSON.parse(received[0]?.body ?? '{}') as {
      type: string
      summary: string
      attachments: { contentType: string; content: { actions?: { type: string; url: string }[] } }[]
    }
    expect([message.type, message.summary, message.attachments[0]?.contentType]).toEqual([
      'message',
      'New referral #r-8',
      'application/vnd.microsoft.card.adaptive',
    ])
    const buttons = message.attachments[0]?.content.actions ?? []
    expect(
      buttons.map(
        (b) =>
          b.type === 'Action.OpenUrl' &&
          b.url.startsWith('https://referrals.example/app/decision-links?token=v1.'),
      ),
    ).toEqual([true, true])
    expect(received[0]?.body).not.toContain('Canary')
  })

  it("does not call a practice's Teams URL on a private address unless private webhooks are allowed", async () => {
    const world = await createWorld()
    const specA = await world.addSpecialist('spec-a', 1)
    notifications = await startNotifications(
      { config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), store: world.store, engine: world.engine },
      { clock: world.clock, env: {}, schedulerIntervalMs: 10, deliveryIntervalMs: 10 },
    )
    await notifications.preferences.put(
      { kind: 'practice', practiceId: specA },
      { channels: { teams: url.replace('/hook', '/teams') } },
    )
    await world.send('r-7')
    await vi.waitFor(
      async () =>
        expect((await notifications?.outbox.list({ status: 'dead_letter' }))?.[0]?.state).toMatchObject({
          lastError: 'blocked address',
        }),
      { timeout: 5_000, interval: 20 },
    )
    expect(received).toEqual([])
  })

  it("delivers a practice's SMS through the configured HTTP gateway: the number and the fixed wording, no patient data", async () => {
    const world = await createWorld()
    const specA = await world.addSpecialist('spec-a', 1)
    notifications = await startNotifications(
      { config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), store: world.store, engine: world.engine },
      {
        clock: world.clock,
        env: {
          SMS_GATEWAY_URL: url.replace('/hook', '/sms'),
          SMS_GATEWAY_FROM: '+15145550100',
          SMS_GATEWAY_TOKEN: 'tok_0123456789',
        },
        schedulerIntervalMs: 10,
        deliveryIntervalMs: 10,
      },
    )
    expect(notifications.settings.smsGateway?.from).toBe('+15145550100')
    await notifications.preferences.put(
      { kind: 'practice', practiceId: specA },
      { channels: { sms: '+15145550123' } },
    )
    await world.send('r-7')
    await vi.waitFor(() => expect(received.length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 })
    const sms = JSON.parse(received[0]?.body ?? '{}') as {
      to: string
      from: string
      text: string
      parts: number
    }
    expect([sms.to, sms.from, sms.parts]).toEqual(['+15145550123', '+15145550100', 1])
    expect(sms.text).toContain('r-7')
    expect(received[0]?.body).not.toContain('Canary')
  })

  it('derives the decision-link key from the master key when DECISION_LINK_SECRET is unset (links survive a restart)', async () => {
    const world = await createWorld()
    const specA = await world.addSpecialist('spec-a', 1)
    notifications = await startNotifications(
      { config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), store: world.store, engine: world.engine },
      { clock: world.clock, env: {}, schedulerIntervalMs: 10, deliveryIntervalMs: 10 },
    )
    await world.send('r-1')
    const token = notifications.links.sign({
      referralId: unsafeId('r-1'),
      practiceId: unsafeId<PracticeId>('spec-a'),
      action: 'accept',
      deliveryNo: 1,
    })
    // Without DECISION_LINK_SECRET the key is derived from the master key: stable across restarts.
    const again = await startNotifications(
      { config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), store: world.store, engine: world.engine },
      { clock: world.clock, env: {}, schedulerIntervalMs: 60_000, deliveryIntervalMs: 60_000 },
    )
    expect(again.links.check(token)).toMatchObject({ ok: true, claims: { practiceId: specA } })
    await again.stop()
  })

  it('runs on openRuntime (memory store, encrypted PHI) and delivers the reminder without patient data', async () => {
    const start = '2026-03-02T08:00:00.000Z' as Instant
    const clock = manualClock(start)
    const runtime = await openRuntime(testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), { clock })
    try {
      // The world seeds the catalog and practices into the runtime's store (its own clock runs alongside).
      const world = await createWorld({ store: runtime.store })
      const specA = await world.addSpecialist('spec-a', 1)
      notifications = await startNotifications(runtime, {
        env: { NOTIFY_WEBHOOK_SECRET: WEBHOOK_SECRET, NOTIFY_ALLOW_PRIVATE_WEBHOOKS: 'true' },
        schedulerIntervalMs: 10,
        deliveryIntervalMs: 10,
      })
      await notifications.preferences.put(
        { kind: 'practice', practiceId: specA },
        { channels: { webhook: url } },
      )
      const referralId = unsafeId<ReferralId>('r-1')
      const sent = await runtime.engine.referrals.execute(
        referralId,
        { type: 'SendReferral', data: world.sendData('r-1') },
        await world.as(world.ownerOf('clinic')),
      )()
      expect(sent._tag).toBe('Right')
      clock.advance(24 * HOUR + 60_000)
      await vi.waitFor(() => expect(received.map((r) => r.kind)).toContain('recipient.reminder'), {
        timeout: 5_000,
        interval: 20,
      })
      expect(received.map((r) => r.kind)).toContain('recipient.new_referral')
      for (const r of received) expect(r.body).not.toContain('Canary')
      // The default base URL is the service's own address.
      expect(received.find((r) => r.kind === 'recipient.reminder')?.text).toContain(
        'http://127.0.0.1:3000/decision-links?token=v1.',
      )
    } finally {
      await notifications?.stop()
      notifications = undefined
      await runtime.close()
    }
  })
})
