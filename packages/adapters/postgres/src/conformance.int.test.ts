import { describeEventStoreConformance } from '@referrals/core/testing'
import { afterAll, beforeAll } from 'vitest'
import { createPostgresEventStore } from './event-store.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(async () => {
  await db.drop()
})

describeEventStoreConformance('PostgreSQL', () =>
  createPostgresEventStore({ connectionString: db.url, poolSize: 25 }),
)
