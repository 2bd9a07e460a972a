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

/**
 * The idempotency completion as a companion of the append (`completionWrite`): a process SIGKILLed
 * among such appends leaves every committed stream with its completed record and no completed
 * record without its stream — no referral whose retry would find its key still in flight (and,
 * after the lease, run the command again), no answer for a command that was never written.
 */
it('a completion written with the append is stored exactly when the append is, across a SIGKILL', async () => {
  const pool = new pg.Pool({ connectionString: db.url })
  try {
    const store = await postgresIdempotencyStore({ pool })
    const child = spawn(
      process.execPath,
      [
        '--conditions=@referrals/source',
        '--import',
        'tsx',
        fileURLToPath(new URL('./testing/companion-kill-child.ts', import.meta.url)),
        db.url,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
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
        for (const line of lines) if (line.startsWith('done ')) done.add(line.slice(5))
        if (done.size >= 400) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      void exited.then(() => reject(new Error(`child exited before it was killed: ${stderr.slice(0, 500)}`)))
    })
    expect(await exited).toBe('SIGKILL')
    expect(stderr).toBe('')

    const records = await pool.query<{ key: string; status: number | null; body: string | null }>(
      "SELECT key, status, body FROM referrals_http.idempotency_keys WHERE scope = 'user:kill'",
    )
    const streams = await pool.query<{ key: string }>(
      "SELECT substr(stream_id, 6) AS key FROM referrals.events WHERE stream_id LIKE 'kill-kill-%'",
    )
    const written = new Set(streams.rows.map((r) => r.key))
    const completed = new Set(records.rows.filter((r) => r.status !== null).map((r) => r.key))
    // Every answered append is stored, with its answer.
    for (const key of done) expect([key, written.has(key), completed.has(key)]).toEqual([key, true, true])
    // Both ways, also for the appends the kill cut off: a stream exactly when its completion.
    expect([...written].sort()).toEqual([...completed].sort())
    for (const row of records.rows)
      if (row.status !== null) expect(row).toEqual({ key: row.key, status: 201, body: row.key })
    // A retry replays an answered request; a claim whose append was cut off stays in flight.
    const at = new Date('2026-03-01T00:00:01.000Z')
    for (const key of [...done].slice(0, 20))
      expect(await store.begin('user:kill', key, `f-${key}`, at, 3_600_000)).toEqual({
        kind: 'replay',
        response: { status: 201, headers: {}, body: key },
      })
    const cut = records.rows.filter((r) => r.status === null).map((r) => r.key)
    for (const key of cut)
      expect(await store.begin('user:kill', key, `f-${key}`, at, 3_600_000)).toEqual({ kind: 'in_flight' })
    await store.close()
  } finally {
    await pool.end()
  }
}, 120_000)
