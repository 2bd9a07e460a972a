/**
 * Child process of the companion kill test: 32 concurrent lanes each claim a key, then append a
 * new stream `kill-<key>` with the key's completion as a companion write (one transaction), and
 * print `done <key>` when that append is answered, until the process is killed.
 * Usage: node --conditions=@referrals/source --import tsx companion-kill-child.ts <url>
 */
import { unsafeId } from '@referrals/core'
import { createPostgresEventStore } from '@referrals/postgres'
import * as E from 'fp-ts/lib/Either.js'
import pg from 'pg'
import { postgresIdempotencyStore } from '../idempotency-postgres.js'

const [url] = process.argv.slice(2)
if (url === undefined) throw new Error('usage: companion-kill-child <url>')
const pool = new pg.Pool({ connectionString: url, max: 4 })
const keys = await postgresIdempotencyStore({ pool })
const events = await createPostgresEventStore({ connectionString: url, poolSize: 4 })
const completionWrite = keys.completionWrite
if (completionWrite === undefined) throw new Error('no completionWrite')
const now = new Date('2026-03-01T00:00:00.000Z')

const lane = async (n: number) => {
  for (let i = 0; ; i++) {
    const key = `kill-${n}-${i}`
    const claim = await keys.begin('user:kill', key, `f-${key}`, now, 3_600_000)
    if (claim.kind !== 'started') throw new Error(`claim of ${key} answered ${claim.kind}`)
    // Two streams, as a routed send writes the referral and the pool.
    const written = await events.appendMany(
      [
        {
          streamId: unsafeId(`kill-${key}`),
          expected: { kind: 'no_stream' },
          events: [
            { id: unsafeId(`e-${key}`), type: 'Sent', schemaVersion: 1, data: {}, metadata: {} as never },
          ],
        },
        {
          streamId: unsafeId(`lane-${n}`),
          expected: i === 0 ? { kind: 'no_stream' } : { kind: 'exact', version: i },
          events: [
            { id: unsafeId(`l-${key}`), type: 'Routed', schemaVersion: 1, data: {}, metadata: {} as never },
          ],
        },
      ],
      { companions: [completionWrite('user:kill', key, { status: 201, headers: {}, body: key }, now)] },
    )()
    if (E.isLeft(written)) throw new Error(written.left.message)
    process.stdout.write(`done ${key}\n`)
  }
}
await Promise.all(Array.from({ length: 32 }, (_, n) => lane(n)))
