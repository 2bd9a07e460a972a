import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type PracticeId, type ReferralId, unsafeId } from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { testConfig } from '../testing.js'
import { startNotifications } from './start.js'

const MASTER_KEY = Buffer.alloc(32, 9).toString('base64')
const SCHEMA = 'notify_http_test'

describe('startNotifications with a PostgreSQL pool', () => {
  let db: TestDatabase
  let pool: pg.Pool
  let server: Server
  let url: string
  const kinds: string[] = []
  beforeAll(async () => {
    db = await createTestDatabase()
    pool = new pg.Pool({ connectionString: db.url })
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        kinds.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { kind: string }).kind)
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  })
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await pool.end()
    await db.drop()
  })

  it('keeps outbox, preferences and used links in PostgreSQL, shared by every process', async () => {
    const world = await createWorld()
    const specA = await world.addSpecialist('spec-a', 1)
    const runtime = {
      config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }),
      store: world.store,
      engine: world.engine,
      pool,
    }
    const options = {
      clock: world.clock,
      env: { NOTIFY_WEBHOOK_SECRET: 'whsec_pg_test_0123456789', NOTIFY_ALLOW_PRIVATE_WEBHOOKS: 'true' },
      schema: SCHEMA,
      schedulerIntervalMs: 10,
      deliveryIntervalMs: 10,
    }
    const first = await startNotifications(runtime, options)
    const second = await startNotifications(runtime, { ...options, schedulerIntervalMs: 60_000 })
    try {
      await first.preferences.put({ kind: 'practice', practiceId: specA }, { channels: { webhook: url } })
      // Another process sees the preferences.
      expect(await second.preferences.get({ kind: 'practice', practiceId: specA })).toEqual({
        channels: { webhook: url },
      })
      await world.send('r-1')
      await vi.waitFor(() => expect(kinds).toContain('recipient.new_referral'), {
        timeout: 10_000,
        interval: 25,
      })
      // The receiver sees the delivery before the worker records it: wait for the record.
      await vi.waitFor(
        async () => {
          const rows = await pool.query<{ channel: string; status: string }>(
            `SELECT channel, status FROM ${SCHEMA}.outbox WHERE id LIKE '%:recipient.new_referral:%'`,
          )
          expect(rows.rows).toEqual([{ channel: 'webhook', status: 'delivered' }])
        },
        { timeout: 10_000, interval: 50 },
      )
      // Both projectors fed the same outbox; the notification went out once.
      expect(kinds.filter((k) => k === 'recipient.new_referral')).toHaveLength(1)

      const token = first.links.sign({
        referralId: unsafeId<ReferralId>('r-1'),
        practiceId: unsafeId<PracticeId>('spec-a'),
        action: 'accept',
        deliveryNo: 1,
      })
      expect((await second.links.verify(token)).ok).toBe(true)
      expect(await first.links.verify(token)).toEqual({ ok: false, reason: 'used' })
    } finally {
      await first.stop()
      await second.stop()
    }
  })
})
