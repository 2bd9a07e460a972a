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

it('a second start while the owner lives shares its server; stop() of the shared handle leaves it running', async () => {
  const dataDir = path.join(parent, 'shared')
  const owner = await startEmbeddedPostgres({ dataDir, database: 'app' })
  try {
    expect(owner.shared).toBe(false)
    const second = await startEmbeddedPostgres({ dataDir, database: 'other' })
    expect(second).toMatchObject({ shared: true, pid: owner.pid, port: owner.port })
    expect((await query(second.connectionString, 'SELECT current_database() AS db')).rows[0].db).toBe('other')
    await second.stop()
    expect((await query(owner.connectionString, 'SELECT 1 AS one')).rows[0].one).toBe(1)
  } finally {
    await owner.stop()
  }
  // Stopped through stop(): `lost` never settles.
  const settled = await Promise.race([
    owner.lost.then(() => true),
    new Promise((r) => setTimeout(() => r(false), 200)),
  ])
  expect(settled).toBe(false)
})

it('lost settles when the server stops under its owner, and stop() then returns at once', async () => {
  const dataDir = path.join(parent, 'lost')
  const server = await startEmbeddedPostgres({ dataDir })
  process.kill(server.pid, 'SIGINT')
  await expect(server.lost).resolves.toMatch(/exited unexpectedly/)
  await server.stop()
})

it('refuses a taken port with a clear message', async () => {
  const dataDir = path.join(parent, 'port-taken')
  const first = await startEmbeddedPostgres({ dataDir: path.join(parent, 'port-owner') })
  try {
    await expect(startEmbeddedPostgres({ dataDir, port: first.port })).rejects.toThrow(/the port is in use/)
  } finally {
    await first.stop()
  }
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
