/**
 * Child process of the durability test: appends batches from four concurrent loops and prints
 * `ack <id>,<id>` for every append PostgreSQL acknowledged, until it is killed.
 * Usage: node --conditions=@referrals/source --import tsx durability-child.ts <url> <category>
 */
import { expected, type StreamId, unsafeId } from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { createPostgresEventStore } from '../event-store.js'
import { newEvent } from './fixtures.js'

const [url, category] = process.argv.slice(2)
if (url === undefined || category === undefined) throw new Error('usage: durability-child <url> <category>')
const store = await createPostgresEventStore({ connectionString: url, poolSize: 4 })

const loop = async (lane: number) => {
  for (let i = 0; ; i++) {
    const events = [newEvent('Acked', { lane, i }), newEvent('Acked', { lane, i })]
    const r = await store.append({
      streamId: unsafeId<StreamId>(`${category}-${lane}`),
      expected: expected.any,
      events,
    })()
    if (E.isLeft(r)) {
      process.stderr.write(`append failed: ${r.left._tag}\n`)
      continue
    }
    process.stdout.write(`ack ${events.map((e) => e.id).join(',')}\n`)
  }
}
await Promise.all([0, 1, 2, 3].map(loop))
