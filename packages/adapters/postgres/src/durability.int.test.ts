import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { migrate } from './migrations.js'
import { uniqueCategory } from './testing/fixtures.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(async () => {
  await db?.drop()
})

it('every append acknowledged to a process that is then SIGKILLed is stored, and streams stay contiguous', async () => {
  const pool = new pg.Pool({ connectionString: db.url })
  try {
    await migrate(pool)
    const cat = uniqueCategory()
    const child = spawn(
      process.execPath,
      [
        '--conditions=@referrals/source',
        '--import',
        'tsx',
        fileURLToPath(new URL('./testing/durability-child.ts', import.meta.url)),
        db.url,
        cat,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const acked: string[] = []
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    })
    let buffered = ''
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    )
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8')
        const lines = buffered.split('\n')
        buffered = lines.pop() ?? ''
        for (const line of lines) if (line.startsWith('ack ')) acked.push(...line.slice(4).split(','))
        if (acked.length >= 400) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      void exited.then(() => reject(new Error(`child exited before it was killed: ${stderr.slice(0, 500)}`)))
    })
    expect(await exited).toBe('SIGKILL')

    const stored = await pool.query<{ event_id: string }>(
      'SELECT event_id FROM referrals.events WHERE event_id = ANY ($1)',
      [acked],
    )
    expect(stored.rowCount).toBe(acked.length)
    const streams = await pool.query<{ stream_id: string; n: string; max: number; version: number }>(
      `SELECT e.stream_id, count(*) AS n, max(e.version) AS max, s.version
       FROM referrals.events e JOIN referrals.streams s USING (stream_id)
       WHERE e.stream_id LIKE $1 GROUP BY e.stream_id, s.version`,
      [`${cat}-%`],
    )
    expect(streams.rows.length).toBe(4)
    for (const row of streams.rows) {
      expect(Number(row.n)).toBe(row.max)
      expect(row.version).toBe(row.max)
    }
  } finally {
    await pool.end()
  }
})
