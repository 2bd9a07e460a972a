import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type ReferralId, type UserId, unsafeId } from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDecisionLinks, inMemoryUsedLinks } from './decision-links.js'
import type { Notification } from './notification.js'
import { deliverDue, inMemoryOutbox } from './outbox.js'
import { inMemoryPreferences, parseNotificationPreferences } from './preferences.js'
import { createOutboxProjector } from './projector.js'
import { teamsChannel, teamsMessage } from './teams.js'

const LINK_SECRET = 'decision-link-secret-0123456789abcdef'
const BASE_URL = 'https://referrals.test/decision'
const OBJECT_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301'

interface Card {
  readonly type: string
  readonly version: string
  readonly body: readonly {
    readonly type: string
    readonly text?: string
    readonly facts?: readonly { readonly title: string; readonly value: string }[]
  }[]
  readonly actions?: readonly {
    readonly type: string
    readonly title: string
    readonly url: string
    readonly style: string
  }[]
  readonly msteams?: {
    readonly entities: readonly {
      readonly type: string
      readonly text: string
      readonly mentioned: { readonly id: string }
    }[]
  }
}
interface Received {
  readonly path: string
  readonly card: Card
  readonly raw: string
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

/**
 * What a Teams incoming webhook (Workflows) checks before it answers 202: a JSON `message` whose
 * attachments are Adaptive Cards with a version and a body; anything else is 400.
 */
const cardOf = (raw: string, contentType: string | undefined): Card | null => {
  if (contentType !== 'application/json') return null
  const body = JSON.parse(raw) as {
    type?: unknown
    attachments?: readonly { contentType?: unknown; content?: Partial<Card> }[]
  }
  const attachment = body.attachments?.[0]
  const card = attachment?.content
  if (
    body.type !== 'message' ||
    body.attachments?.length !== 1 ||
    attachment?.contentType !== 'application/vnd.microsoft.card.adaptive' ||
    card?.type !== 'AdaptiveCard' ||
    typeof card.version !== 'string' ||
    !Array.isArray(card.body) ||
    card.body.length === 0
  )
    return null
  // Every mention in the text needs its entity, and the other way round.
  const ats =
    card.body
      .map((b) => b.text ?? '')
      .join(' ')
      .match(/<at>[^<]*<\/at>/g) ?? []
  if (ats.length !== (card.msteams?.entities.length ?? 0)) return null
  return card as Card
}

describe('Microsoft Teams delivery against a local incoming-webhook receiver', () => {
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
      if (req.url === '/moved') {
        res.writeHead(307, { location: `${base}/elsewhere` }).end()
        return
      }
      if (req.url === '/elsewhere') throw new Error('a redirect was followed')
      if (permanentFailure) {
        res.writeHead(500).end('internal error')
        return
      }
      if (failuresLeft > 0) {
        failuresLeft--
        res.writeHead(503).end('busy')
        return
      }
      const card = cardOf(raw, req.headers['content-type'])
      if (card === null) {
        res.writeHead(400).end('bad payload')
        return
      }
      received.push({ path: req.url ?? '', card, raw })
      res.writeHead(202).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const notification: Notification = {
    id: 'evt-1:recipient:recipient.new_referral:teams:practice-p1',
    eventId: 'evt-1',
    kind: 'recipient.new_referral',
    audience: 'recipient',
    subject: 'New referral',
    text: 'Dr Canary Clinic sent referral r-1 (ortho, urgent). [x](https://evil.example) **bold**',
    payload: {
      referralId: 'r-1',
      specialtyId: 'ortho',
      urgency: 'urgent',
      senderPracticeName: 'Canary Clinic',
    },
    links: { accept: `${BASE_URL}?token=a`, decline: `${BASE_URL}?token=d` },
  }

  it('builds a minimal Adaptive Card by default; the text only when the practice allows it, without Markdown', () => {
    const minimal = teamsMessage(notification, { mentions: ['dr.a@clinic.example', 'not an id', OBJECT_ID] })
    const card = cardOf(JSON.stringify(minimal), 'application/json')
    expect(card).not.toBeNull()
    expect(JSON.stringify(minimal)).not.toContain('Canary')
    expect(card?.body[0]?.text).toBe(
      '<at>preferred provider</at> <at>preferred provider</at> **New referral** #r-1',
    )
    expect(card?.msteams?.entities.map((e) => e.mentioned.id)).toEqual(['dr.a@clinic.example', OBJECT_ID])
    expect(card?.body[1]?.facts).toEqual([
      { title: 'Referral', value: 'r-1' },
      { title: 'Category', value: 'ortho' },
      { title: 'Urgency', value: 'urgent' },
    ])
    expect(card?.actions?.map((a) => [a.type, a.title, a.url, a.style])).toEqual([
      ['Action.OpenUrl', 'Accept', `${BASE_URL}?token=a`, 'positive'],
      ['Action.OpenUrl', 'Decline', `${BASE_URL}?token=d`, 'destructive'],
    ])
    expect(minimal.summary).toBe('New referral #r-1')
    const full = teamsMessage(notification, { detail: 'full' }).attachments[0].content
    const text = full.body[2]
    expect(text?.type === 'TextBlock' && text.text).toContain('Canary Clinic sent referral r-1')
    expect(JSON.stringify(full.body)).not.toMatch(/\[x\]|\*\*bold/)
    // A payload value that is not an id-like string is not shown (it could carry Markdown).
    const odd = teamsMessage({
      ...notification,
      payload: { referralId: '[r](https://x.example)', urgency: 'urgent' },
    })
    expect(JSON.stringify(odd)).not.toContain('x.example')
    const { links: _links, ...noLinks } = notification
    expect(teamsMessage(noLinks).attachments[0].content.actions).toBeUndefined()
  })

  it('retries a 5xx with backoff through the outbox and delivers once (202 counts as delivered)', async () => {
    failuresLeft = 2
    received.length = 0
    const outbox = inMemoryOutbox()
    const channels = new Map([['teams', teamsChannel() as never]])
    await outbox.enqueue(
      [
        {
          notification,
          channel: 'teams',
          address: { webhookUrl: `${base}/workflows/x`, mentions: [OBJECT_ID] },
        },
      ],
      0,
    )
    expect((await deliverDue({ outbox, channels, nowMs: 0 })).retried).toBe(1)
    expect((await outbox.list())[0]?.state).toEqual({
      status: 'pending',
      attempts: 1,
      nextAttemptAtMs: 30_000,
      lastError: 'HTTP 503',
    })
    expect((await deliverDue({ outbox, channels, nowMs: 29_999 })).retried).toBe(0)
    expect((await deliverDue({ outbox, channels, nowMs: 30_000 })).retried).toBe(1)
    expect((await deliverDue({ outbox, channels, nowMs: 90_000 })).delivered).toBe(1)
    expect((await deliverDue({ outbox, channels, nowMs: 10_000_000 })).delivered).toBe(0)
    expect(received.map((r) => r.path)).toEqual(['/workflows/x'])
    expect(received[0]?.card.msteams?.entities[0]?.mentioned.id).toBe(OBJECT_ID)
    expect((await outbox.list())[0]?.state).toMatchObject({ status: 'delivered', attempts: 3 })
  })

  it('dead-letters after max attempts when the receiver always fails', async () => {
    permanentFailure = true
    attempts = 0
    const outbox = inMemoryOutbox()
    const channels = new Map([['teams', teamsChannel() as never]])
    await outbox.enqueue([{ notification, channel: 'teams', address: { webhookUrl: `${base}/dead` } }], 0)
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

  it('does not retry a 4xx or follow a redirect, and treats an unreachable host as retryable', async () => {
    const channel = teamsChannel({ timeoutMs: 2_000 })
    const notFound = createServer((_req, res) => res.writeHead(404).end('workflow deleted'))
    await new Promise<void>((resolve) => notFound.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(notFound.address() as AddressInfo).port}/gone`
    expect(await channel.deliver(notification, { webhookUrl: url })).toEqual({
      ok: false,
      retryable: false,
      reason: 'HTTP 404',
    })
    await new Promise<void>((resolve) => notFound.close(() => resolve()))
    expect(await channel.deliver(notification, { webhookUrl: `${base}/moved` })).toEqual({
      ok: false,
      retryable: false,
      reason: 'HTTP 307',
    })
    expect(await channel.deliver(notification, { webhookUrl: 'http://127.0.0.1:1/x' })).toEqual({
      ok: false,
      retryable: true,
      reason: 'connection failed',
    })
  })

  it('preferences take a Teams URL and member id, with errors that never repeat the value', () => {
    const ok = parseNotificationPreferences({
      channels: { teams: 'https://prod.westus.logic.azure.com/workflows/abc' },
      teamsUserId: OBJECT_ID,
    })
    expect(ok).toEqual({
      ok: true,
      value: {
        channels: { teams: 'https://prod.westus.logic.azure.com/workflows/abc' },
        teamsUserId: OBJECT_ID,
      },
    })
    const bad = parseNotificationPreferences({
      channels: { teams: 'javascript:alert(1)' },
      teamsUserId: '<at>x</at>',
    })
    expect(bad).toEqual({
      ok: false,
      errors: [
        'channels.teams: expected an http(s) URL',
        'teamsUserId: expected a user principal name or an Entra object id',
      ],
    })
  })

  it('from committed events: mentions the preferred provider, buttons are decision links, follow-ups on accept and decline', async () => {
    received.length = 0
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    const outbox = inMemoryOutbox()
    const preferences = inMemoryPreferences()
    await preferences.put({ kind: 'practice', practiceId: a }, { channels: { teams: `${base}/spec-a` } })
    await preferences.put(
      { kind: 'user', userId: unsafeId<UserId>('owner-spec-a') },
      { channels: {}, teamsUserId: OBJECT_ID },
    )
    await preferences.put(
      { kind: 'practice', practiceId: w.ids.clinic },
      { channels: { teams: `${base}/clinic` } },
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
    await w.send('tm-1', { kind: 'direct', practiceId: a })
    await w.send('tm-2', { kind: 'direct', practiceId: a })
    const owner = await w.as(w.ownerOf('spec-a'))
    await w.must(
      w.engine.referrals.execute(unsafeId<ReferralId>('tm-1'), { type: 'AcceptReferral', data: {} }, owner),
    )
    await w.must(
      w.engine.referrals.execute(
        unsafeId<ReferralId>('tm-2'),
        { type: 'DeclineReferral', data: { reasonCode: 'capacity' } },
        owner,
      ),
    )
    await projector.start().caughtUp()
    await projector.stop()
    failuresLeft = 1
    const channels = new Map([['teams', teamsChannel()]])
    const t0 = Date.parse(w.clock.now())
    const policy = { maxAttempts: 5, baseDelayMs: 1_000, factor: 2, maxDelayMs: 60_000 }
    const first = await deliverDue({ outbox, channels, nowMs: t0, policy })
    expect(first.retried).toBe(1)
    const second = await deliverDue({ outbox, channels, nowMs: t0 + 1_000, policy })
    expect(first.delivered + second.delivered).toBe((await outbox.list()).length)
    expect(await outbox.list({ status: 'pending' })).toEqual([])

    const toSpecialist = received.filter((r) => r.path === '/spec-a')
    const toClinic = received.filter((r) => r.path === '/clinic')
    expect(toSpecialist.map((r) => r.card.body[0]?.text).sort()).toEqual([
      '<at>preferred provider</at> **New referral** #tm-1',
      '<at>preferred provider</at> **New referral** #tm-2',
    ])
    for (const r of toSpecialist) {
      expect(r.card.msteams?.entities.map((e) => e.mentioned.id)).toEqual([OBJECT_ID])
      const refOf = r.card.body[0]?.text?.split('#')[1]
      const [accept, decline] = r.card.actions ?? []
      expect(links.check(tokenOf(accept?.url))).toMatchObject({
        ok: true,
        claims: { referralId: refOf, practiceId: a, action: 'accept', deliveryNo: 1 },
      })
      expect(links.check(tokenOf(decline?.url))).toMatchObject({
        ok: true,
        claims: { referralId: refOf, action: 'decline' },
      })
      expect(links.check(`${tokenOf(accept?.url)}x`).ok).toBe(false)
    }
    const leads = toClinic.map((r) => r.card.body[0]?.text).sort()
    expect(leads).toContain('✅ **Referral accepted** #tm-1')
    expect(leads).toContain('❌ **Referral declined** #tm-2')
    // Follow-ups to the sender carry no buttons and nobody is mentioned.
    for (const r of toClinic) {
      expect(r.card.actions).toBeUndefined()
      expect(r.raw).not.toContain('<at>')
    }
    // No PHI (patient name, health number, reason) and, by default, no practice names in chat.
    for (const r of received) expect(r.raw).not.toMatch(/canary|HN-tm|Clinic sent|spec-a sent/i)
  })
})
