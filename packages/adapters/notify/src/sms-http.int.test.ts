import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Notification } from './notification.js'
import { deliverDue, inMemoryOutbox } from './outbox.js'
import { gatewayReference, httpSmsChannel } from './sms.js'

const PHONE = '+15145550123'

interface Request {
  readonly method: string | undefined
  readonly path: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly body: unknown
}

const note = (id: string, text: string): Notification => ({
  id,
  eventId: `evt-${id}`,
  kind: 'recipient.reminder',
  audience: 'recipient',
  subject: '',
  text,
  payload: { referralId: 'r-1' },
})

describe('SMS through an HTTP gateway against a local receiver', () => {
  let server: Server
  let base: string
  const requests: Request[] = []
  /** Status to answer per request number (1-based); 'hang' never answers. */
  let answer: (n: number) => number | 'hang' = () => 202

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8')
        requests.push({ method: req.method, path: req.url, headers: req.headers, body: JSON.parse(raw) })
        const status = answer(requests.length)
        if (status === 'hang') return
        res.writeHead(status, { 'content-type': 'application/json' }).end('{"id":"gw-1"}')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  beforeEach(() => {
    requests.length = 0
    answer = () => 202
  })
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )

  it('posts the documented JSON body with a bearer token to the configured URL', async () => {
    const channel = httpSmsChannel({
      url: `${base}/v1/messages`,
      from: 'REFERRALS',
      auth: { kind: 'bearer', token: 'tok-123' },
    })
    const text = 'Reminder: a referral is waiting for your answer: #r-1.'
    expect(await channel.deliver(note('n1', text), { phone: PHONE })).toEqual({ ok: true })
    expect(requests).toHaveLength(1)
    expect(requests[0]).toMatchObject({
      method: 'POST',
      path: '/v1/messages',
      headers: { authorization: 'Bearer tok-123', 'content-type': 'application/json' },
    })
    expect(requests[0]?.body).toEqual({
      to: PHONE,
      from: 'REFERRALS',
      text,
      encoding: 'gsm7',
      parts: 1,
      reference: gatewayReference('n1'),
    })
    expect(gatewayReference('n1')).toMatch(/^[0-9a-f]{32}$/)
    expect(gatewayReference('n1')).not.toBe(gatewayReference('n2'))
  })

  it('uses basic auth or a named API-key header, and counts UCS-2 parts', async () => {
    const basic = httpSmsChannel({ url: base, from: 'X', auth: { kind: 'basic', user: 'acct', pass: 'p:w' } })
    expect(await basic.deliver(note('b', 'ж'.repeat(71)), { phone: PHONE })).toEqual({ ok: true })
    // base64("acct:p:w")
    expect(requests[0]?.headers.authorization).toBe('Basic YWNjdDpwOnc=')
    expect(requests[0]?.body).toMatchObject({ encoding: 'ucs2', parts: 2 })
    const keyed = httpSmsChannel({
      url: base,
      from: 'X',
      auth: { kind: 'header', name: 'X-Api-Key', value: 'k1' },
    })
    expect(await keyed.deliver(note('k', 'a'.repeat(161)), { phone: PHONE })).toEqual({ ok: true })
    expect(requests[1]?.headers['x-api-key']).toBe('k1')
    expect(requests[1]?.headers.authorization).toBeUndefined()
    expect(requests[1]?.body).toMatchObject({ encoding: 'gsm7', parts: 2 })
  })

  it('retries a 5xx through the outbox and delivers when the gateway recovers', async () => {
    answer = (n) => (n === 1 ? 503 : 200)
    const outbox = inMemoryOutbox()
    await outbox.enqueue([{ notification: note('r', 'x'), channel: 'sms', address: { phone: PHONE } }], 0)
    const channels = new Map([['sms', httpSmsChannel({ url: base, from: 'X' }) as never]])
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
    expect(await deliverDue({ outbox, channels, nowMs: 30_000 })).toEqual({
      delivered: 1,
      retried: 0,
      deadLettered: 0,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect(requests).toHaveLength(2)
  })

  it('dead-letters a 4xx at once and retries 429', async () => {
    answer = () => 400
    const outbox = inMemoryOutbox()
    await outbox.enqueue([{ notification: note('d', 'x'), channel: 'sms', address: { phone: PHONE } }], 0)
    const channels = new Map([['sms', httpSmsChannel({ url: base, from: 'X' }) as never]])
    expect(await deliverDue({ outbox, channels, nowMs: 0 })).toEqual({
      delivered: 0,
      retried: 0,
      deadLettered: 1,
      awaitingReceipt: 0,
      uncertain: 0,
    })
    expect((await outbox.list({ status: 'dead_letter' }))[0]?.state).toEqual({
      status: 'dead_letter',
      attempts: 1,
      lastError: 'HTTP 400',
    })
    answer = () => 401
    const channel = httpSmsChannel({ url: base, from: 'X' })
    expect(await channel.deliver(note('u', 'x'), { phone: PHONE })).toEqual({
      ok: false,
      retryable: false,
      reason: 'HTTP 401',
    })
    answer = () => 429
    expect(await channel.deliver(note('t', 'x'), { phone: PHONE })).toEqual({
      ok: false,
      retryable: true,
      reason: 'HTTP 429',
    })
  })

  it('retries a timeout and an unreachable gateway; errors carry no number or text', async () => {
    answer = () => 'hang'
    const text = 'Your referral was sent. The specialist office will contact you.'
    const slow = await httpSmsChannel({ url: base, from: 'X', timeoutMs: 150 }).deliver(note('h', text), {
      phone: PHONE,
    })
    expect(slow).toEqual({ ok: false, retryable: true, reason: 'timeout' })
    const down = await httpSmsChannel({ url: 'http://127.0.0.1:1/send', from: 'X' }).deliver(
      note('c', text),
      {
        phone: PHONE,
      },
    )
    expect(down).toEqual({ ok: false, retryable: true, reason: 'connection failed' })
    for (const r of [slow, down]) {
      expect(JSON.stringify(r)).not.toContain('5145550123')
      expect(JSON.stringify(r)).not.toContain('specialist')
    }
  })

  it('refuses a URL that is not http(s) at construction', () => {
    expect(() => httpSmsChannel({ url: 'ftp://gw.example/send', from: 'X' })).toThrow(
      'httpSmsChannel: url must be an absolute http(s) URL',
    )
    expect(() => httpSmsChannel({ url: '/relative', from: 'X' })).toThrow(/absolute http\(s\) URL/)
  })
})
