import type { Channel, Notification, WebhookAddress } from '@referrals/notify'
import { describe, expect, it } from 'vitest'
import { checkWebhookUrl, guardWebhookChannel, isNonPublicAddress } from './webhook-url.js'

const production = { httpsOnly: true, allowPrivate: false }

describe('webhook URL policy', () => {
  it.each([
    'https://hooks.example.com/in',
    'https://hooks.example.com:8443/in?x=1',
    'https://93.184.216.34/in',
    'https://[2606:4700::1111]/in',
  ])('accepts %s', (url) => {
    expect(checkWebhookUrl(url, production).ok).toBe(true)
  })

  it.each([
    'http://hooks.example.com/in',
    'ftp://hooks.example.com/in',
    'https://user:pw@hooks.example.com/in',
    'https://localhost/in',
    'https://api.localhost/in',
    'https://printer.local/in',
    'https://metadata.google.internal/in',
    'https://intranet/in',
    'https://127.0.0.1/in',
    'https://2130706433/in',
    'https://0x7f.1/in',
    'https://10.0.0.1/in',
    'https://172.16.5.4/in',
    'https://192.168.1.1/in',
    'https://169.254.169.254/latest',
    'https://100.64.0.1/in',
    'https://0.0.0.0/in',
    'https://224.0.0.1/in',
    'https://[::1]/in',
    'https://[::]/in',
    'https://[fd00::1]/in',
    'https://[fe80::1]/in',
    'https://[::ffff:127.0.0.1]/in',
    'https://[::ffff:a9fe:a9fe]/in',
    'https://[64:ff9b::10.0.0.1]/in',
    `https://hooks.example.com/${'x'.repeat(2100)}`,
    'not a url',
  ])('refuses %s', (url) => {
    expect(checkWebhookUrl(url, production).ok).toBe(false)
  })

  it('accepts http and private hosts only when the policy allows them', () => {
    expect(checkWebhookUrl('http://hooks.example.com/in', { httpsOnly: false, allowPrivate: false }).ok).toBe(
      true,
    )
    expect(checkWebhookUrl('http://127.0.0.1:8080/in', { httpsOnly: false, allowPrivate: false }).ok).toBe(
      false,
    )
    expect(checkWebhookUrl('http://127.0.0.1:8080/in', { httpsOnly: false, allowPrivate: true }).ok).toBe(
      true,
    )
    expect(checkWebhookUrl('http://127.0.0.1:8080/in', { httpsOnly: true, allowPrivate: true }).ok).toBe(
      false,
    )
  })

  it('classifies resolved addresses', () => {
    expect(isNonPublicAddress('8.8.8.8')).toBe(false)
    expect(isNonPublicAddress('2001:4860:4860::8888')).toBe(false)
    expect(isNonPublicAddress('10.255.0.1')).toBe(true)
    expect(isNonPublicAddress('::ffff:10.0.0.1')).toBe(true)
    expect(isNonPublicAddress('not-an-ip')).toBe(true)
  })
})

describe('guardWebhookChannel', () => {
  const notification: Notification = {
    id: 'n-1',
    eventId: 'e-1',
    kind: 'recipient.reminder',
    audience: 'recipient',
    subject: 's',
    text: 't',
    payload: {},
  }
  const recording = () => {
    const calls: string[] = []
    const channel: Channel<WebhookAddress> = {
      name: 'webhook',
      deliver: async (_n, address) => {
        calls.push(address.url)
        return { ok: true }
      },
    }
    return { calls, channel }
  }

  it('refuses, permanently, a host name that resolves to a private address', async () => {
    const { calls, channel } = recording()
    const guarded = guardWebhookChannel(channel, production, async () => ['93.184.216.34', '10.0.0.7'])
    const result = await guarded.deliver(notification, { url: 'https://rebind.example.com/in', secret: 's' })
    expect(result).toEqual({ ok: false, retryable: false, reason: 'blocked address' })
    expect(calls).toEqual([])
  })

  it('refuses a stored URL that the policy no longer accepts, without resolving it', async () => {
    const { calls, channel } = recording()
    let resolved = 0
    const guarded = guardWebhookChannel(channel, production, async () => {
      resolved++
      return ['93.184.216.34']
    })
    const result = await guarded.deliver(notification, { url: 'http://hooks.example.com/in', secret: 's' })
    expect(result).toMatchObject({ ok: false, retryable: false })
    expect(resolved).toBe(0)
    expect(calls).toEqual([])
  })

  it('retries when the name does not resolve, and delivers to public addresses', async () => {
    const { calls, channel } = recording()
    const failing = guardWebhookChannel(channel, production, async () => {
      throw new Error('ENOTFOUND')
    })
    expect(await failing.deliver(notification, { url: 'https://hooks.example.com/in', secret: 's' })).toEqual(
      {
        ok: false,
        retryable: true,
        reason: 'connection failed',
      },
    )
    const guarded = guardWebhookChannel(channel, production, async () => ['93.184.216.34'])
    expect(await guarded.deliver(notification, { url: 'https://hooks.example.com/in', secret: 's' })).toEqual(
      {
        ok: true,
      },
    )
    expect(calls).toEqual(['https://hooks.example.com/in'])
  })
})
