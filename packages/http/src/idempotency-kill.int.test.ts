import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { postgresIdempotencyStore } from './idempotency-postgres.js'

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(async () => {
  await db?.drop()
})

it('every claim and completion answered to a process that is then SIGKILLed mid-batch is stored', async () => {
  const pool = new pg.Pool({ connectionString: db.url })
  try {
    // The table exists before the child starts, so the kill lands among group-committed writes.
    const store = await postgresIdempotencyStore({ pool })
    const child = spawn(
      process.execPath,
      [
        '--conditions=@referrals/source',
        '--import',
        'tsx',
        fileURLToPath(new URL('./testing/idempotency-kill-child.ts', import.meta.url)),
        db.url,
        'kill',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const claimed = new Set<string>()
    const done = new Set<string>()
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    })
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    )
    let buffered = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8')
        const lines = buffered.split('\n')
        buffered = lines.pop() ?? ''
        for (const line of lines) {
          if (line.startsWith('claimed ')) claimed.add(line.slice(8))
          else if (line.startsWith('done ')) done.add(line.slice(5))
        }
        if (done.size >= 600) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      void exited.then(() => reject(new Error(`child exited before it was killed: ${stderr.slice(0, 500)}`)))
    })
    expect(await exited).toBe('SIGKILL')
    expect(stderr).toBe('')

    const rows = await pool.query<{ key: string; status: number | null; body: string | null }>(
      "SELECT key, status, body FROM referrals_http.idempotency_keys WHERE scope = 'user:kill'",
    )
    const stored = new Map(rows.rows.map((r) => [r.key, r]))
    // Nothing answered is lost: every answered claim is there, every answered completion too.
    for (const key of claimed) expect(stored.has(key)).toBe(true)
    for (const key of done) expect(stored.get(key)).toEqual({ key, status: 201, body: key })
    // Nothing is there that was not asked for, and every stored row is whole.
    for (const row of rows.rows) {
      expect(row.key).toMatch(/^kill-\d+-\d+$/)
      if (row.status !== null) expect(row.body).toBe(row.key)
    }
    // A retry of an answered request replays it. A claim whose completion was not answered before
    // the kill is in flight until its lease — or replays, if that completion committed in the
    // instant before the kill; it is never started a second time within the lease.
    const at = new Date('2026-03-01T00:00:01.000Z')
    const replayOf = (key: string) => ({ kind: 'replay', response: { status: 201, headers: {}, body: key } })
    for (const key of [...done].slice(0, 50))
      expect(await store.begin('user:kill', key, `f-${key}`, at, 3_600_000)).toEqual(replayOf(key))
    const cut = [...claimed].filter((k) => !done.has(k))
    for (const key of cut)
      expect([{ kind: 'in_flight' }, replayOf(key)]).toContainEqual(
        await store.begin('user:kill', key, `f-${key}`, at, 3_600_000),
      )
    await store.close()
  } finally {
    await pool.end()
  }
})
