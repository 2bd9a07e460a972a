import {
  type EventStore,
  type PracticeId,
  type ReferralId,
  readAllEvents,
  type StoredEvent,
  type UserId,
  unsafeId,
} from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import {
  createDecisionLinks,
  inMemoryOutbox,
  inMemoryPreferences,
  inMemoryUsedLinks,
  type Notification,
} from '@referrals/notify'
import { afterEach, describe, expect, it } from 'vitest'
import { buildTestApp, type TestApp } from '../testing.js'
import { registerNotificationRoutes } from './routes.js'

/** Every stored event, in global order. */
const eventsOf = async (store: EventStore): Promise<StoredEvent[]> => {
  const events: StoredEvent[] = []
  for await (const event of readAllEvents(store)) events.push(event)
  return events
}

const LINK_SECRET = 'decision-link-test-secret-0123456789abcdef'
const HOUR = 3_600_000

describe('notification routes (inject, in-memory engine)', () => {
  let current: TestApp | undefined
  afterEach(async () => {
    await current?.app.close()
    current = undefined
  })

  const setup = async () => {
    const world = await createWorld()
    await world.addSpecialist('spec-a', 1)
    await world.addSpecialist('spec-b', 1)
    const specA = unsafeId<PracticeId>('spec-a')
    await world.must(
      world.engine.practices.execute(
        specA,
        { type: 'AddMember', data: { userId: unsafeId<UserId>('staff-a'), role: 'staff' } },
        await world.as(world.ownerOf('spec-a')),
      ),
    )
    const outbox = inMemoryOutbox()
    const preferences = inMemoryPreferences()
    const links = createDecisionLinks({
      secret: LINK_SECRET,
      clock: world.clock,
      usedStore: inMemoryUsedLinks(),
    })
    current = await buildTestApp({
      store: world.store,
      resolveActor: (userId, roles) => world.engine.directory.resolveActor(userId as UserId, roles),
      registerRoutes: registerNotificationRoutes({
        engine: world.engine,
        outbox,
        preferences,
        links,
        webhookPolicy: { httpsOnly: true, allowPrivate: false },
      }),
    })
    const app = current.app
    const tokens = {
      ownerA: await current.token({ userId: 'owner-spec-a' }),
      staffA: await current.token({ userId: 'staff-a' }),
      ownerClinic: await current.token({ userId: 'owner-clinic' }),
      admin: await current.token({ userId: 'admin', roles: ['admin'] }),
      stranger: await current.token({ userId: 'stranger' }),
    }
    const call = (who: keyof typeof tokens, method: 'GET' | 'PUT', url: string, payload?: unknown) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${tokens[who]}` },
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      })
    return { world, app, outbox, preferences, links, call }
  }

  const notification = (
    id: string,
    audience: Notification['audience'],
    payload: Notification['payload'],
  ) => ({
    id,
    eventId: id.split(':')[0] ?? id,
    kind: audience === 'recipient' ? 'recipient.new_referral' : 'sender.receipt',
    audience,
    subject: 'Canary subject',
    text: 'Canary text',
    payload,
  })

  it('shows dead letters of a practice to its owners and platform admins only, without addresses', async () => {
    const { outbox, call } = await setup()
    const hook = { url: 'https://hooks.example.com/very-secret-path', secret: 'whsec_0123456789abcdef' }
    await outbox.enqueue(
      [
        {
          notification: notification(
            'e1:recipient:recipient.new_referral:webhook:practice-spec-a',
            'recipient',
            {
              referralId: 'r-1',
              recipientPracticeId: 'spec-a',
              senderPracticeId: 'clinic',
            },
          ),
          channel: 'webhook',
          address: hook,
        },
        {
          notification: notification('e1:sender:sender.receipt:webhook:practice-clinic', 'sender', {
            referralId: 'r-1',
            recipientPracticeId: 'spec-a',
            senderPracticeId: 'clinic',
          }),
          channel: 'webhook',
          address: hook,
        },
        {
          notification: notification(
            'e2:recipient:recipient.new_referral:webhook:user-staff-a',
            'recipient',
            {
              referralId: 'r-2',
              recipientPracticeId: 'spec-a',
            },
          ),
          channel: 'webhook',
          address: hook,
        },
      ],
      0,
    )
    for (const entry of await outbox.claimDue(0, 10)) {
      if (entry.notification.id.startsWith('e2:')) continue
      await outbox.record(entry.notification.id, {
        status: 'dead_letter',
        attempts: 8,
        lastError: 'HTTP 404',
      })
    }
    const url = '/practices/spec-a/notifications/dead-letters'
    const byOwner = await call('ownerA', 'GET', url)
    expect(byOwner.statusCode).toBe(200)
    expect(byOwner.json()).toEqual({
      items: [
        {
          id: 'e1:recipient:recipient.new_referral:webhook:practice-spec-a',
          eventId: 'e1',
          referralId: 'r-1',
          kind: 'recipient.new_referral',
          audience: 'recipient',
          channel: 'webhook',
          target: 'practice',
          attempts: 8,
          lastErrorClass: 'http_4xx',
        },
      ],
    })
    expect(byOwner.body).not.toContain('very-secret-path')
    expect(byOwner.body).not.toContain('Canary')
    expect((await call('admin', 'GET', url)).json().items).toHaveLength(1)
    expect((await call('staffA', 'GET', url)).statusCode).toBe(403)
    expect((await call('stranger', 'GET', url)).statusCode).toBe(404)
    expect((await call('ownerClinic', 'GET', url)).statusCode).toBe(404)
    const clinic = await call('ownerClinic', 'GET', '/practices/clinic/notifications/dead-letters')
    expect(clinic.json().items.map((i: { id: string }) => i.id)).toEqual([
      'e1:sender:sender.receipt:webhook:practice-clinic',
    ])
    const unauthenticated = await current?.app.inject({ method: 'GET', url })
    expect(unauthenticated?.statusCode).toBe(401)
  })

  it('validates preferences, refuses unsafe webhook URLs without echoing them, and never returns the secret', async () => {
    const { call, preferences } = await setup()
    const url = '/practices/spec-a/notification-preferences'
    for (const webhook of [
      'http://hooks.example.com/in',
      'https://127.0.0.1:9/in',
      'https://169.254.169.254/latest/meta-data',
      'https://10.1.2.3/in',
      'https://[::1]/in',
      'https://[::ffff:192.168.0.1]/in',
      'https://localhost/in',
      'https://metadata.internal/in',
      'https://user:pw@hooks.example.com/in',
      'not a url at all',
    ]) {
      const res = await call('ownerA', 'PUT', url, { channels: { webhook } })
      expect(res.statusCode, webhook).toBe(400)
      expect(res.json().errors).toEqual([{ path: 'body.channels.webhook', expected: expect.any(String) }])
      expect(res.body).not.toContain(webhook)
    }
    const badEmail = await call('ownerA', 'PUT', url, { channels: { email: 'canary-not-an-address' } })
    expect(badEmail.statusCode).toBe(400)
    expect(badEmail.json().errors).toEqual([{ path: 'body.channels.email', expected: 'an email address' }])
    expect(badEmail.body).not.toContain('canary-not-an-address')
    const badZone = await call('ownerA', 'PUT', url, {
      quietHours: { start: '22:00', end: '25:00', timeZone: 'Mars/Olympus' },
    })
    expect(badZone.statusCode).toBe(400)
    expect(badZone.json().errors.map((e: { path: string }) => e.path)).toEqual([
      'body.quietHours.end',
      'body.quietHours.timeZone',
    ])
    expect(await preferences.get({ kind: 'practice', practiceId: unsafeId<PracticeId>('spec-a') })).toBeNull()

    const secret = 'whsec_canary_0123456789'
    const ok = await call('ownerA', 'PUT', url, {
      channels: { webhook: 'https://hooks.example.com/in', email: 'office@spec-a.example' },
      webhookSecret: secret,
      quietHours: { start: '22:00', end: '07:00', timeZone: 'America/Toronto' },
    })
    expect(ok.statusCode).toBe(200)
    expect(ok.json()).toEqual({
      channels: { webhook: 'https://hooks.example.com/in', email: 'office@spec-a.example' },
      quietHours: { start: '22:00', end: '07:00', timeZone: 'America/Toronto' },
      webhookSecretSet: true,
      slackUserId: null,
      teamsUserId: null,
      chatDetail: 'minimal',
    })
    expect(ok.body).not.toContain(secret)
    expect((await call('ownerA', 'GET', url)).json()).toEqual(ok.json())
    // A PUT without a secret keeps the stored one.
    await call('ownerA', 'PUT', url, { channels: { webhook: 'https://hooks2.example.com/in' } })
    expect(await preferences.get({ kind: 'practice', practiceId: unsafeId<PracticeId>('spec-a') })).toEqual({
      channels: { webhook: 'https://hooks2.example.com/in' },
      webhookSecret: secret,
    })

    expect((await call('staffA', 'PUT', url, { channels: {} })).statusCode).toBe(403)
    expect((await call('staffA', 'GET', url)).statusCode).toBe(403)
    expect((await call('stranger', 'GET', url)).statusCode).toBe(404)

    const mine = await call('staffA', 'PUT', '/me/notification-preferences', {
      channels: { email: 'staff@spec-a.example' },
    })
    expect(mine.statusCode).toBe(200)
    expect(await preferences.get({ kind: 'user', userId: unsafeId<UserId>('staff-a') })).toEqual({
      channels: { email: 'staff@spec-a.example' },
    })
    expect((await call('stranger', 'GET', '/me/notification-preferences')).json()).toEqual({
      channels: {},
      quietHours: null,
      webhookSecretSet: false,
      slackUserId: null,
      teamsUserId: null,
      chatDetail: 'minimal',
    })
  })

  it('sets the chat and SMS channels over HTTP: Slack and Teams URLs pass the address policy, ids and numbers are checked', async () => {
    const { call, preferences } = await setup()
    const url = '/practices/spec-a/notification-preferences'
    for (const [name, value] of [
      ['slack', 'https://10.1.2.3/services/T/B/x'],
      ['teams', 'https://localhost/workflows/x'],
      ['teams', 'https://user:pw@prod.westus.logic.azure.com/workflows/x'],
    ] as const) {
      const res = await call('ownerA', 'PUT', url, { channels: { [name]: value } })
      expect(res.statusCode, value).toBe(400)
      expect(res.json().errors).toEqual([{ path: `body.channels.${name}`, expected: expect.any(String) }])
      expect(res.body).not.toContain(value)
    }
    const bad = await call('ownerA', 'PUT', url, {
      channels: { sms: '5145550123' },
      slackUserId: '<!channel>',
      teamsUserId: 'not-an-id',
    })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().errors.map((e: { path: string }) => e.path)).toEqual([
      'body.channels.sms',
      'body.slackUserId',
      'body.teamsUserId',
    ])
    const badDetail = await call('ownerA', 'PUT', url, { chatDetail: 'everything' })
    expect(badDetail.statusCode).toBe(400)
    expect(badDetail.body).not.toContain('everything')
    expect(bad.body).not.toMatch(/5145550123|<!channel>|not-an-id/)
    expect(await preferences.get({ kind: 'practice', practiceId: unsafeId<PracticeId>('spec-a') })).toBeNull()

    const body = {
      channels: {
        slack: 'https://hooks.slack.com/services/T0/B0/x',
        teams: 'https://prod.westus.logic.azure.com/workflows/abc',
        sms: '+15145550123',
      },
      chatDetail: 'full',
    }
    const ok = await call('ownerA', 'PUT', url, body)
    expect(ok.statusCode).toBe(200)
    expect(ok.json()).toEqual({
      channels: body.channels,
      quietHours: null,
      webhookSecretSet: false,
      slackUserId: null,
      teamsUserId: null,
      chatDetail: 'full',
    })
    expect(await preferences.get({ kind: 'practice', practiceId: unsafeId<PracticeId>('spec-a') })).toEqual(
      body,
    )
    const mine = await call('staffA', 'PUT', '/me/notification-preferences', {
      channels: {},
      slackUserId: 'U0123ABC',
      teamsUserId: 'dr.a@spec-a.example',
    })
    expect(mine.json()).toMatchObject({ slackUserId: 'U0123ABC', teamsUserId: 'dr.a@spec-a.example' })
    expect(await preferences.get({ kind: 'user', userId: unsafeId<UserId>('staff-a') })).toEqual({
      channels: {},
      slackUserId: 'U0123ABC',
      teamsUserId: 'dr.a@spec-a.example',
    })
  })

  describe('decision links', () => {
    const linkFor = async (
      ctx: Awaited<ReturnType<typeof setup>>,
      referralId: string,
      action: 'accept' | 'decline',
    ) => {
      await ctx.world.send(referralId)
      const holder = await ctx.world.holderOf(referralId)
      if (holder === null) throw new Error('referral not delivered')
      return {
        holder,
        token: ctx.links.sign({
          referralId: unsafeId<ReferralId>(referralId),
          practiceId: holder,
          action,
          deliveryNo: 1,
        }),
      }
    }
    const post = (ctx: Awaited<ReturnType<typeof setup>>, token: string) =>
      ctx.app.inject({
        method: 'POST',
        url: `/decision-links/${token}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: '',
      })

    it('confirms on GET without using the link, accepts on POST as the linked practice, once', async () => {
      const ctx = await setup()
      const { token, holder } = await linkFor(ctx, 'r-1', 'accept')
      const page = await ctx.app.inject({ method: 'GET', url: `/decision-links/${token}` })
      expect(page.statusCode).toBe(200)
      expect(page.headers['content-type']).toContain('text/html')
      expect(page.body).toContain(`<form method="post" action="/decision-links/${token}">`)
      expect(page.body).toContain('Accept this referral?')
      expect(page.body).not.toContain('Canary')
      const byQuery = await ctx.app.inject({ method: 'GET', url: `/decision-links?token=${token}` })
      expect(byQuery.statusCode).toBe(200)
      expect(await ctx.world.statusOf('r-1')).toBe('pending')

      const accepted = await post(ctx, token)
      expect(accepted.statusCode).toBe(200)
      expect(accepted.headers['content-type']).toContain('text/html')
      expect(accepted.body).toContain('Referral accepted')
      expect(await ctx.world.statusOf('r-1')).toBe('accepted')
      const event = (await eventsOf(ctx.world.store)).find((e) => e.type === 'ReferralAccepted')
      expect(event?.metadata.actor).toEqual({
        kind: 'user',
        userId: 'decision-link',
        platformRoles: [],
        memberships: [{ practiceId: holder, role: 'staff' }],
      })
      expect(event?.metadata.correlationId).toMatch(/^decision-link:[A-Za-z0-9_-]{22}$/)

      // Logs name the route pattern, never the token (a token in a log would be a usable link).
      expect(current?.logs()).toContain('/decision-links/*')
      expect(current?.logs()).not.toContain(token.split('.')[2])

      const again = await post(ctx, token)
      expect(again.statusCode).toBe(410)
      expect(again.body).toContain('Link already used')
      expect((await eventsOf(ctx.world.store)).filter((e) => e.type === 'ReferralAccepted')).toHaveLength(1)
    })

    it('declines with reason code other, and the pooled referral is re-routed', async () => {
      const ctx = await setup()
      const { token, holder } = await linkFor(ctx, 'r-1', 'decline')
      const declined = await post(ctx, token)
      expect(declined.statusCode).toBe(200)
      expect(declined.body).toContain('Referral declined')
      const event = (await eventsOf(ctx.world.store)).find((e) => e.type === 'ReferralDeclined')
      expect(event?.data).toMatchObject({ practiceId: holder, reasonCode: 'other', deliveryNo: 1 })
      expect(await ctx.world.statusOf('r-1')).toBe('pending')
      expect(await ctx.world.holderOf('r-1')).not.toBe(holder)
    })

    it('answers an expired link with the expired page and changes nothing', async () => {
      const ctx = await setup()
      const { token } = await linkFor(ctx, 'r-1', 'accept')
      ctx.world.clock.advance(12 * HOUR)
      const expired = await post(ctx, token)
      expect(expired.statusCode).toBe(410)
      expect(expired.body).toContain('Link expired')
      expect((await ctx.app.inject({ method: 'GET', url: `/decision-links/${token}` })).statusCode).toBe(410)
      expect(await ctx.world.statusOf('r-1')).toBe('pending')
    })

    it('answers a tampered or malformed link with the invalid page, never an error dump', async () => {
      const ctx = await setup()
      const { token } = await linkFor(ctx, 'r-1', 'accept')
      const [version, body, signature = ''] = token.split('.')
      const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`
      const tampered = await post(ctx, `${version}.${body}.${flipped}`)
      expect(tampered.statusCode).toBe(400)
      expect(tampered.headers['content-type']).toContain('text/html')
      expect(tampered.body).toContain('This link is not valid')
      const noToken = await ctx.app.inject({ method: 'GET', url: '/decision-links' })
      expect(noToken.statusCode).toBe(400)
      expect(noToken.headers['content-type']).toContain('text/html')
      const malformed = await post(ctx, 'garbage')
      expect(malformed.statusCode).toBe(400)
      expect(malformed.body).toContain('incomplete or damaged')
      expect(await ctx.world.statusOf('r-1')).toBe('pending')
      // The untampered link still works.
      expect((await post(ctx, token)).statusCode).toBe(200)
    })

    it('answers a link for an earlier delivery with the stale page after a re-route', async () => {
      const ctx = await setup()
      const { token, holder } = await linkFor(ctx, 'r-1', 'accept')
      await ctx.world.must(
        ctx.world.engine.referrals.execute(
          unsafeId<ReferralId>('r-1'),
          { type: 'DeclineReferral', data: { reasonCode: 'capacity' } },
          await ctx.world.as(ctx.world.ownerOf(holder)),
        ),
      )
      const next = await ctx.world.holderOf('r-1')
      expect(next).not.toBe(holder)
      const page = await ctx.app.inject({ method: 'GET', url: `/decision-links/${token}` })
      expect(page.statusCode).toBe(409)
      const stale = await post(ctx, token)
      expect(stale.statusCode).toBe(409)
      expect(stale.body).toContain('no longer waiting for your answer')
      expect(await ctx.world.statusOf('r-1')).toBe('pending')
      expect(await ctx.world.holderOf('r-1')).toBe(next)
    })

    it('documents the notification routes in the OpenAPI document', async () => {
      const ctx = await setup()
      const doc = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json()
      for (const path of [
        '/practices/{practiceId}/notifications/dead-letters',
        '/practices/{practiceId}/notification-preferences',
        '/me/notification-preferences',
        '/decision-links',
      ]) {
        expect(Object.keys(doc.paths)).toContain(path)
      }
      // Fastify's `*` is documented as a named parameter; the links need no token.
      expect(doc.paths['/decision-links/{token}'].post.security).toEqual([])
      expect(doc.paths['/me/notification-preferences'].put.security).toEqual([{ bearerAuth: [] }])
    })
  })
})
