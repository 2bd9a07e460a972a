import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { inject } from 'vitest'
import { DATABASE_URL_KEY } from './provided.js'

export interface TestDatabase {
  /** Connection string of the new, empty database. */
  readonly url: string
  readonly name: string
  /** Drops the database (terminating its remaining connections). */
  readonly drop: () => Promise<void>
}

const withAdmin = async <A>(adminUrl: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: adminUrl })
  client.on('error', () => undefined)
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/**
 * Creates a fresh, uniquely named database on the test run's server (provided by the globalSetup
 * `@referrals/postgres/testing/global-setup`, or pass an admin URL) and returns its URL.
 * Typical use: `const db = await createTestDatabase()` in `beforeAll`, `await db.drop()` in `afterAll`.
 */
export const createTestDatabase = async (
  adminUrl: string = inject(DATABASE_URL_KEY),
): Promise<TestDatabase> => {
  const name = `t_${Date.now().toString(36)}_${randomBytes(5).toString('hex')}`
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`))
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    drop: () =>
      withAdmin(adminUrl, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)
      }),
  }
}

export { DATABASE_URL_KEY } from './provided.js'
