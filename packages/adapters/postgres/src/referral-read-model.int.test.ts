import { createHmac } from 'node:crypto'
import { type BlindIndex, type PracticeId, referralAggregate } from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import * as E from 'fp-ts/lib/Either.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresEventStore, type PostgresEventStore } from './event-store.js'
import { createPostgresReferralReadModel, type PostgresReferralReadModel } from './referral-read-model.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

// A keyed token for tests; the production blind index lives in @referrals/crypto.
const blindIndex: BlindIndex = {
  token: (field, value) =>
    createHmac('sha256', 'test-key').update(`${field}:${value.trim().toLowerCase()}`).digest('hex'),
}

let db: TestDatabase
let store: PostgresEventStore
let readModel: PostgresReferralReadModel
let world: Awaited<ReturnType<typeof createWorld>>

beforeAll(async () => {
  db = await createTestDatabase()
  store = await createPostgresEventStore({ connectionString: db.url })
  readModel = await createPostgresReferralReadModel({ store, aggregate: referralAggregate(), blindIndex })
  world = await createWorld({ store, blindIndex, referralIndex: () => readModel })
  await world.addSpecialist('spec-a', 1)
  await world.addSpecialist('spec-b', 1)
  for (const n of [1, 2, 3, 4]) {
    world.clock.advance(60_000)
    await world.send(`r-${n}`)
  }
})
afterAll(async () => {
  await store?.close()
  await db?.drop()
})

const clinic = 'clinic' as PracticeId
const ids = (page: E.Either<unknown, { items: readonly { referralId: string }[] }>) =>
  E.isRight(page) ? page.right.items.map((i) => i.referralId) : page

describe('referral read model in PostgreSQL', () => {
  it('lists sent referrals newest first with keyset pagination', async () => {
    const first = await readModel.list({ practiceId: clinic, box: 'sent', limit: 3 })
    expect(ids(first)).toEqual(['r-4', 'r-3', 'r-2'])
    const cursor = E.isRight(first) ? first.right.nextCursor : null
    expect(cursor).not.toBeNull()
    expect(
      ids(await readModel.list({ practiceId: clinic, box: 'sent', limit: 3, cursor: cursor ?? '' })),
    ).toEqual(['r-1'])
    expect(await readModel.list({ practiceId: clinic, box: 'sent', cursor: 'not-a-cursor' })).toEqual(
      E.left('invalid_cursor'),
    )
  })

  it('lists received referrals by current and former recipient, with status filters, reading its own writes', async () => {
    const holder = (await world.holderOf('r-1')) as PracticeId
    await world.must(
      world.engine.referrals.execute(
        'r-1' as never,
        { type: 'DeclineReferral', data: { reasonCode: 'capacity' } },
        await world.as(world.ownerOf(holder)),
      ),
    )
    const other = (await world.holderOf('r-1')) as PracticeId
    expect(other).not.toBe(holder)
    expect(ids(await readModel.list({ practiceId: holder, box: 'received' }))).toContain('r-1')
    expect(ids(await readModel.list({ practiceId: other, box: 'received', status: ['pending'] }))).toContain(
      'r-1',
    )
    expect(ids(await readModel.list({ practiceId: clinic, box: 'sent', status: ['accepted'] }))).toEqual([])
  })

  it('finds referrals by patient name and health number through blind-index tokens only', async () => {
    expect(ids(await readModel.list({ practiceId: clinic, box: 'sent', patient: 'Patient-r-2' }))).toEqual([
      'r-2',
    ])
    expect(ids(await readModel.list({ practiceId: clinic, box: 'sent', patient: 'HN-r-3' }))).toEqual(['r-3'])
    const plaintext = await store.pool.query(
      `SELECT count(*)::int AS n FROM ${store.schema}.referral_search_tokens WHERE token LIKE '%Patient%' OR token LIKE '%HN-%'`,
    )
    expect(plaintext.rows[0].n).toBe(0)
    const dump = await store.pool.query(
      `SELECT (SELECT json_agg(s) FROM ${store.schema}.referral_summaries s)::text || (SELECT json_agg(h) FROM ${store.schema}.referral_history h)::text AS text`,
    )
    expect(dump.rows[0].text).not.toContain('Canary')
  })

  it('rebuilds from zero to the same rows', async () => {
    const before = await store.pool.query(
      `SELECT referral_id, status, version FROM ${store.schema}.referral_summaries ORDER BY referral_id`,
    )
    const history = await store.pool.query(`SELECT count(*)::int AS n FROM ${store.schema}.referral_history`)
    await readModel.rebuild()
    const after = await store.pool.query(
      `SELECT referral_id, status, version FROM ${store.schema}.referral_summaries ORDER BY referral_id`,
    )
    expect(after.rows).toEqual(before.rows)
    expect(before.rows).toHaveLength(4)
    expect(
      (await store.pool.query(`SELECT count(*)::int AS n FROM ${store.schema}.referral_history`)).rows[0].n,
    ).toBe(history.rows[0].n)
  })

  it('feeds the engine: open referrals for the scheduler come from the table', async () => {
    const open = await readModel.open()
    expect(open.map((s) => s.referralId).sort()).toEqual(['r-1', 'r-2', 'r-3', 'r-4'])
  })

  it('forgets a patient: their search tokens go at once, other patients stay findable', async () => {
    expect(ids(await readModel.list({ practiceId: clinic, box: 'sent', patient: 'HN-r-4' }))).toEqual(['r-4'])
    expect(await readModel.forgetPatient('pat-r-4')).toBeGreaterThan(0)
    expect(ids(await readModel.list({ practiceId: clinic, box: 'sent', patient: 'HN-r-4' }))).toEqual([])
    expect(ids(await readModel.list({ practiceId: clinic, box: 'sent', patient: 'Patient-r-4' }))).toEqual([])
    expect(ids(await readModel.list({ practiceId: clinic, box: 'sent', patient: 'HN-r-3' }))).toEqual(['r-3'])
  })
})
