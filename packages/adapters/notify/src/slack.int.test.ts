import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type ReferralId, type UserId, unsafeId } from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDecisionLinks, inMemoryUsedLinks } from './decision-links.js'
import type { Notification } from './notification.js'
import { deliverDue, inMemoryOutbox } from './outbox.js'
import { inMemoryPreferences } from './preferences.js'
import { createOutboxProjector } from './projector.js'
import { slackChannel, slackMessage } from './slack.js'

const LINK_SECRET = 'decision-link-secret-0123456789abcdef'
const BASE_URL = 'https://referrals.test/decision'

interface Received {
  readonly path: string
  readonly body: Record<string, unknown>
}
interface Block {
  readonly type: string
  readonly text?: { readonly type: string; readonly text: string }
  readonly fields?: readonly { readonly text: string }[]
  readonly elements?: readonly {
    readonly type: string
    readonly url?: string
    readonly style?: string
    readonly text: { readonly text: string }
  }[]
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
  })

const tokenOf = (url: string | undefined): string => {
  expect(url?.startsWith(`${BASE_URL}?token=`)).toBe(true)
  return new URL(url ?? 'x:').searchParams.get('token') ?? ''
}

const blocksOf = (r: Received | undefined): readonly Block[] => (r?.body.blocks ?? []) as readonly Block[]
const buttonsOf = (r: Received | undefined) => blocksOf(r).find((b) => b.type === 'actions')?.elements ?? []

describe('Slack delivery against a local incoming-webhook receiver', () => {
  let server: Server
  let base: string
  let failuresLeft = 0
  let permanentFailure = false
  let attempts = 0
  const received: Received[] = []

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const raw = await readBody(req)
      attempts++
      if (permanentFailure) {
        res.writeHead(500).end('internal_error')
        return
      }
      if (failuresLeft > 0) {
        failuresLeft--
        res.writeHead(503).end('service_unavailable')
        return
      }
      // Slack's incoming webhooks take JSON and answer 200 "ok"; a payload without text/blocks is 400.
      const body = JSON.parse(raw) as Record<string, unknown>
      if (req.headers['content-type'] !== 'application/json' || !Array.isArray(body.blocks)) {
        res.writeHead(400).end('invalid_payload')
        return
      }
      received.push({ path: req.url ?? '', body })
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const notification: Notification = {
    id: 'evt-1:recipient:recipient.new_referral:slack:practice-p1',
    eventId: 'evt-1',
    kind: 'recipient.new_referral',
    audience: 'recipient',
    subject: 'New referral',
    text: 'Dr Canary Clinic sent referral r-1 (ortho, urgent).',
    payload: {
      referralId: 'r-1',
      specialtyId: 'ortho',
      urgency: 'urgent',
      senderPracticeName: 'Canary Clinic',
    },
    links: { accept: `${BASE_URL}?token=a`, decline: `${BASE_URL}?token=d` },
  }

  it('builds minimal Block Kit by default and adds the text only when the practice allows it', () => {
    const minimal = slackMessage(notification, { mentions: ['U123', '<!channel>'] })
    const json = JSON.stringify(minimal)
    expect(json).not.toContain('Canary')
    expect(json).not.toContain('<!channel>')
    expect(minimal.text).toBe('<@U123> New referral #r-1')
    expect(minimal.blocks.map((b) => b.type)).toEqual(['section', 'section', 'actions'])
    expect(JSON.stringify(minimal.blocks[1])).toContain('*Category*\\northo')
    expect(JSON.stringify(minimal.blocks[1])).toContain('*Urgency*\\nurgent')
    const full = slackMessage(notification, { detail: 'full' })
    expect(JSON.stringify(full)).toContain('Canary Clinic sent referral r-1')
    const { links: _links, ...noLinks } = notification
    expect(slackMessage(noLinks).blocks.some((b) => b.type === 'actions')).toBe(false)
  })

  it('retries a 5xx with backoff through the outbox and delivers once', async () => {
    failuresLeft = 2
    received.length = 0
    const outbox = inMemoryOutbox()
    const channels = new Map([['slack', slackChannel() as never]])
    await outbox.enqueue(
      [
        {
          notification,
          channel: 'slack',
          address: { webhookUrl: `${base}/services/T/B/x`, mentions: ['U123'] },
        },
      ],
      0,
    )
    expect(await deliverDue({ outbox, channels, nowMs: 0 })).toEqual({
      delivered: 0,
      retried: 1,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect((await outbox.list())[0]?.state).toEqual({
      status: 'pending',
      attempts: 1,
      nextAttemptAtMs: 30_000,
      lastError: 'HTTP 503',
    })
    expect((await deliverDue({ outbox, channels, nowMs: 29_999 })).retried).toBe(0)
    expect((await deliverDue({ outbox, channels, nowMs: 30_000 })).retried).toBe(1)
    expect(await deliverDue({ outbox, channels, nowMs: 90_000 })).toEqual({
      delivered: 1,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect((await deliverDue({ outbox, channels, nowMs: 10_000_000 })).delivered).toBe(0)
    expect(received).toHaveLength(1)
    expect(received[0]?.path).toBe('/services/T/B/x')
    expect(blocksOf(received[0])[0]?.text?.text).toBe('<@U123> *New referral* #r-1')
    expect((await outbox.list())[0]?.state).toMatchObject({ status: 'delivered', attempts: 3 })
  })

  it('dead-letters after max attempts when the receiver always fails', async () => {
    permanentFailure = true
    attempts = 0
    const outbox = inMemoryOutbox()
    const channels = new Map([['slack', slackChannel() as never]])
    await outbox.enqueue([{ notification, channel: 'slack', address: { webhookUrl: `${base}/dead` } }], 0)
    const policy = { maxAttempts: 3, baseDelayMs: 10, factor: 2, maxDelayMs: 1_000 }
    for (let i = 0; i < 5; i++) await deliverDue({ outbox, channels, nowMs: i * 1_000, policy })
    permanentFailure = false
    expect(attempts).toBe(3)
    expect((await outbox.list({ status: 'dead_letter' }))[0]?.state).toEqual({
      status: 'dead_letter',
      attempts: 3,
      lastError: 'HTTP 500',
    })
  })

  it('does not retry a 4xx (revoked hook) and treats an unreachable host as retryable', async () => {
    const channel = slackChannel({ timeoutMs: 2_000 })
    const { links: _links, ...bad } = notification
    // The receiver answers 400 for a non-JSON content type; simulate with a hook path that 404s.
    const notFound = createServer((_req, res) => res.writeHead(404).end('no_service'))
    await new Promise<void>((resolve) => notFound.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(notFound.address() as AddressInfo).port}/gone`
    expect(await channel.deliver(bad, { webhookUrl: url })).toEqual({
      ok: false,
      retryable: false,
      reason: 'HTTP 404',
    })
    await new Promise<void>((resolve) => notFound.close(() => resolve()))
    expect(await channel.deliver(bad, { webhookUrl: 'http://127.0.0.1:1/x' })).toEqual({
      ok: false,
      retryable: true,
      reason: 'connection failed',
    })
  })

  it('from committed events: mentions the preferred provider, buttons are decision links, follow-ups on accept and decline', async () => {
    received.length = 0
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    const outbox = inMemoryOutbox()
    const preferences = inMemoryPreferences()
    await preferences.put({ kind: 'practice', practiceId: a }, { channels: { slack: `${base}/spec-a` } })
    await preferences.put(
      { kind: 'user', userId: unsafeId<UserId>('owner-spec-a') },
      { channels: {}, slackUserId: 'U123' },
    )
    await preferences.put(
      { kind: 'practice', practiceId: w.ids.clinic },
      { channels: { slack: `${base}/clinic` } },
    )
    const links = createDecisionLinks({ secret: LINK_SECRET, clock: w.clock, usedStore: inMemoryUsedLinks() })
    const projector = createOutboxProjector({
      store: w.store,
      engine: w.engine,
      outbox,
      preferences,
      clock: w.clock,
      decisionLinks: { links, baseUrl: BASE_URL },
    })
    await w.send('sl-1', { kind: 'direct', practiceId: a })
    await w.send('sl-2', { kind: 'direct', practiceId: a })
    const owner = await w.as(w.ownerOf('spec-a'))
    await w.must(
      w.engine.referrals.execute(unsafeId<ReferralId>('sl-1'), { type: 'AcceptReferral', data: {} }, owner),
    )
    await w.must(
      w.engine.referrals.execute(
        unsafeId<ReferralId>('sl-2'),
        { type: 'DeclineReferral', data: { reasonCode: 'capacity' } },
        owner,
      ),
    )
    await projector.start().caughtUp()
    await projector.stop()
    failuresLeft = 1
    const channels = new Map([['slack', slackChannel()]])
    const t0 = Date.parse(w.clock.now())
    const policy = { maxAttempts: 5, baseDelayMs: 1_000, factor: 2, maxDelayMs: 60_000 }
    const first = await deliverDue({ outbox, channels, nowMs: t0, policy })
    expect(first.retried).toBe(1)
    const second = await deliverDue({ outbox, channels, nowMs: t0 + 1_000, policy })
    expect(first.delivered + second.delivered).toBe((await outbox.list()).length)
    expect(await outbox.list({ status: 'pending' })).toEqual([])

    const toSpecialist = received.filter((r) => r.path === '/spec-a')
    const toClinic = received.filter((r) => r.path === '/clinic')
    expect(toSpecialist).toHaveLength(2)
    for (const [i, r] of toSpecialist.entries()) {
      const ref = `sl-${i + 1}`
      const lead = [...toSpecialist].find((x) => blocksOf(x)[0]?.text?.text.endsWith(`#${ref}`))
      expect(lead, ref).toBeDefined()
      expect(blocksOf(r)[0]?.text?.text).toMatch(/^<@U123> \*New referral\* #sl-[12]$/)
      const [accept, decline] = buttonsOf(r)
      expect([accept?.text.text, accept?.style, decline?.text.text, decline?.style]).toEqual([
        'Accept',
        'primary',
        'Decline',
        'danger',
      ])
      const refOf = blocksOf(r)[0]?.text?.text.split('#')[1]
      const acceptCheck = links.check(tokenOf(accept?.url))
      const declineCheck = links.check(tokenOf(decline?.url))
      expect(acceptCheck).toMatchObject({
        ok: true,
        claims: { referralId: refOf, practiceId: a, action: 'accept', deliveryNo: 1 },
      })
      expect(declineCheck).toMatchObject({ ok: true, claims: { referralId: refOf, action: 'decline' } })
      expect(links.check(`${tokenOf(accept?.url)}x`).ok).toBe(false)
    }
    const leads = toClinic.map((r) => blocksOf(r)[0]?.text?.text).sort()
    expect(leads).toContain(':white_check_mark: *Referral accepted* #sl-1')
    expect(leads).toContain(':x: *Referral declined* #sl-2')
    // Follow-ups to the sender carry no buttons and nobody is mentioned.
    for (const r of toClinic) {
      expect(buttonsOf(r)).toEqual([])
      expect(JSON.stringify(r.body)).not.toContain('<@')
    }
    // No PHI (patient name, health number, reason) and, by default, no practice names in chat.
    for (const r of received)
      expect(JSON.stringify(r.body)).not.toMatch(/canary|HN-sl|Clinic sent|spec-a sent/i)
  })
})
