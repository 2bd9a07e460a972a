import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { resolveDatabase, startEmbeddedPostgres } from './embedded.js'

let parent: string
beforeAll(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'referrals-embedded-test-'))
  // mkdtemp makes a 0700 directory; the server (user `postgres` when tests run as root) must traverse it.
  await chmod(parent, 0o755)
})
afterAll(async () => {
  await rm(parent, { recursive: true, force: true })
})

const query = async (url: string, sql: string, params: unknown[] = []) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await client.query(sql, params)
  } finally {
    await client.end()
  }
}

it('initialises an empty directory, keeps data across a restart, and listens on 127.0.0.1 only', async () => {
  const dataDir = path.join(parent, 'cluster')
  const first = await startEmbeddedPostgres({ dataDir, database: 'app' })
  expect(first.connectionString).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/app$/)
  try {
    await query(first.connectionString, 'CREATE TABLE kept (v text)')
    await query(first.connectionString, "INSERT INTO kept VALUES ('still here')")
    const listen = await query(first.connectionString, 'SHOW listen_addresses')
    expect(listen.rows[0]).toEqual({ listen_addresses: '127.0.0.1' })
  } finally {
    await first.stop()
  }
  const second = await startEmbeddedPostgres({ dataDir, database: 'app' })
  try {
    const rows = await query(second.connectionString, 'SELECT v FROM kept')
    expect(rows.rows).toEqual([{ v: 'still here' }])
  } finally {
    await second.stop()
  }
  await expect(query(second.connectionString, 'SELECT 1')).rejects.toThrow()
})

it('refuses a non-empty directory that is not one of its clusters', async () => {
  const dataDir = path.join(parent, 'junk')
  await mkdir(dataDir)
  await writeFile(path.join(dataDir, 'notes.txt'), 'x')
  await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/not empty/)
})

it('resolveDatabase prefers DATABASE_URL', async () => {
  const previous = process.env.DATABASE_URL
  process.env.DATABASE_URL = 'postgres://u@127.0.0.1:5999/x'
  try {
    const resolved = await resolveDatabase({ dataDir: path.join(parent, 'unused') })
    expect(resolved).toMatchObject({ connectionString: 'postgres://u@127.0.0.1:5999/x', embedded: false })
    await resolved.stop()
  } finally {
    if (previous === undefined) delete process.env.DATABASE_URL
    else process.env.DATABASE_URL = previous
  }
})
