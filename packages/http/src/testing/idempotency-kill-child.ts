/**
 * Child process of the idempotency kill test: 32 concurrent lanes claim keys and complete them
 * through the group-committed PostgreSQL store, printing `claimed <key>` when a claim is answered
 * `started` and `done <key>` when its completion is answered, until the process is killed.
 * Usage: node --conditions=@referrals/source --import tsx idempotency-kill-child.ts <url> <prefix>
 */
import pg from 'pg'
import { postgresIdempotencyStore } from '../idempotency-postgres.js'

const [url, prefix] = process.argv.slice(2)
if (url === undefined || prefix === undefined) throw new Error('usage: idempotency-kill-child <url> <prefix>')
const pool = new pg.Pool({ connectionString: url, max: 4 })
const store = await postgresIdempotencyStore({ pool })
const now = new Date('2026-03-01T00:00:00.000Z')

const lane = async (n: number) => {
  for (let i = 0; ; i++) {
    const key = `${prefix}-${n}-${i}`
    const result = await store.begin('user:kill', key, `f-${key}`, now, 3_600_000)
    if (result.kind !== 'started') {
      process.stderr.write(`claim of ${key} answered ${result.kind}\n`)
      continue
    }
    process.stdout.write(`claimed ${key}\n`)
    await store.complete('user:kill', key, { status: 201, headers: {}, body: key }, now)
    process.stdout.write(`done ${key}\n`)
  }
}
await Promise.all(Array.from({ length: 32 }, (_, n) => lane(n)))
