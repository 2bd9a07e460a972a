import {
  type ChainProblemKind,
  type EventMetadata,
  eventHash,
  hashChainedStore,
  integrityOf,
  type MessageId,
  type ReferralId,
  recordPhiAccess,
  type StoredEvent,
  type StreamHead,
  type StreamId,
  unsafeId,
  verifyStore,
  withIntegrity,
} from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import { createPostgresEventStore, type PostgresEventStore } from '@referrals/postgres'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import * as E from 'fp-ts/lib/Either.js'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Hasher } from './hasher.js'
import { MasterKey } from './master-key.js'
import { createInMemoryPatientKeyStore } from './memory-key-store.js'
import { createAesGcmPhiCipher } from './phi-cipher.js'

/**
 * Tamper evidence on a real PostgreSQL store (SPEC §3 "Privacy and audit"): a realistic history is
 * written through the engine (hash-chained store, sealed PHI), copied into a second schema, and
 * the copy is then mutated more than a thousand times, one mutation at a time, each inside a
 * transaction that is rolled back. The verifier reads the mutated rows through the adapter's own
 * read path on the same connection and must report each mutation with the kind, stream, version
 * and global position that an independent oracle (below) computes from the original rows.
 */

const SEED = 0x5eed_2026
const MUTATIONS_PER_KIND = 100
const COPY_SCHEMA = 'tamper_copy'

let db: TestDatabase
let original: PostgresEventStore
let copy: PostgresEventStore

/** A small seeded PRNG (mulberry32): the same mutations on every run. */
const prng = (seed: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <A>(xs: readonly A[]): A => xs[int(xs.length)] as A
  return { int, pick }
}

interface Row {
  readonly position: bigint
  readonly streamId: string
  readonly version: number
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly data: string
  readonly metadata: string
}

/** What the verifier must report. */
interface Expected {
  readonly kind: ChainProblemKind
  readonly streamId: string
  readonly version: number
  readonly globalPosition: bigint | null
}

/**
 * Changes one letter or digit inside a JSON string literal (never inside an escape), so the text
 * stays valid JSON of the same shape but with a different value.
 */
const mutateJsonText = (text: string, rnd: ReturnType<typeof prng>): string => {
  const candidates: number[] = []
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    if (!inString) {
      if (c === '"') inString = true
      continue
    }
    if (c === '\\') {
      i += text[i + 1] === 'u' ? 5 : 1
      continue
    }
    if (c === '"') inString = false
    else if (/[A-Za-z0-9]/.test(c)) candidates.push(i)
  }
  if (candidates.length === 0) throw new Error('no string character to mutate')
  const at = rnd.pick(candidates)
  const c = text[at] as string
  const alphabet = /[0-9]/.test(c) ? '0123456789' : 'abcdefghijklmnopqrstuvwxyz'
  let replacement = c
  while (replacement === c) replacement = alphabet[rnd.int(alphabet.length)] as string
  return `${text.slice(0, at)}${replacement}${text.slice(at + 1)}`
}

/** Every event of the copy, in global order, read through the adapter on the given connection. */
async function* readThrough(client: pg.PoolClient): AsyncGenerator<StoredEvent> {
  let after = 0n
  for (;;) {
    const { events } = await copy.readAllWithHorizon(client, { after, maxCount: 500 })
    yield* events
    const last = events.at(-1)
    if (last === undefined || events.length < 500) return
    after = last.globalPosition
  }
}

beforeAll(async () => {
  db = await createTestDatabase()
  original = await createPostgresEventStore({ connectionString: db.url })
  const cipher = createAesGcmPhiCipher({
    keys: createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() }),
  })
  const world = await createWorld({ store: hashChainedStore(original, sha256Hasher), cipher })
  const { engine, must, as, clock } = world
  const specialists = await Promise.all(
    ['spec-a', 'spec-b', 'spec-c'].map((id) => world.addSpecialist(id, 1)),
  )
  const clinicCtx = await as(world.ownerOf('clinic'))
  for (let i = 0; i < 20; i++) {
    const id = unsafeId<ReferralId>(`r-${i}`)
    clock.advance(60_000)
    await world.send(id)
    const post = async (ctx: typeof clinicCtx, n: number) =>
      must(
        engine.referrals.execute(
          id,
          {
            type: 'PostMessage',
            data: { messageId: unsafeId<MessageId>(`m-${i}-${n}`), phi: { body: `Message ${n} on ${id}` } },
          },
          ctx,
        ),
      )
    await post(clinicCtx, 1)
    const holder = await world.holderOf(id)
    if (holder === null) continue
    const holderCtx = await as(world.ownerOf(holder))
    const audited = await recordPhiAccess(engine, {
      userId: unsafeId(world.ownerOf(holder)),
      role: 'owner',
      practiceId: holder,
      referralId: id,
      patientId: unsafeId(`pat-${id}`),
      purpose: 'treatment',
      outcome: 'granted',
      channel: 'api',
      resource: '/referrals/:referralId',
      correlationId: unsafeId(`read-${i}`),
    })
    expect(E.isRight(audited)).toBe(true)
    if (i % 3 === 0) {
      await must(
        engine.referrals.execute(
          id,
          {
            type: 'DeclineReferral',
            data: { reasonCode: 'capacity', phi: { note: `Full this month (${id})` } },
          },
          holderCtx,
        ),
      )
      continue
    }
    await must(engine.referrals.execute(id, { type: 'AcceptReferral', data: {} }, holderCtx))
    await post(holderCtx, 2)
    if (i % 3 === 1) {
      clock.advance(3_600_000)
      await must(
        engine.referrals.execute(
          id,
          {
            type: 'ScheduleAppointment',
            data: { at: clock.now(), phi: { location: `Room ${i}, Main Street clinic` } },
          },
          holderCtx,
        ),
      )
      await must(
        engine.referrals.execute(
          id,
          { type: 'CompleteReferral', data: { phi: { outcomeNote: `Seen; plan discussed (${id})` } } },
          holderCtx,
        ),
      )
    }
  }
  expect(specialists).toHaveLength(3)

  // The copy: the same tables in another schema (migrated by the adapter), rows copied verbatim.
  copy = await createPostgresEventStore({ connectionString: db.url, schema: COPY_SCHEMA })
  await copy.pool.query(`INSERT INTO ${COPY_SCHEMA}.events SELECT * FROM ${original.schema}.events`)
  await copy.pool.query(`INSERT INTO ${COPY_SCHEMA}.streams SELECT * FROM ${original.schema}.streams`)
})

afterAll(async () => {
  await copy?.close()
  await original?.close()
  await db?.drop()
})

describe('tampering with a copy of a PostgreSQL event store', () => {
  it(`reports each of ${MUTATIONS_PER_KIND * 11} random single mutations at the right stream, version and position`, async () => {
    const result = await copy.pool.query<{
      position: string
      stream_id: string
      version: number
      event_id: string
      type: string
      schema_version: number
      data: string
      metadata: string
    }>(
      `SELECT global_position::text AS position, stream_id, version, event_id, type, schema_version,
              data::text AS data, metadata::text AS metadata
         FROM ${COPY_SCHEMA}.events ORDER BY global_position`,
    )
    const rows: Row[] = result.rows.map((r) => ({
      position: BigInt(r.position),
      streamId: r.stream_id,
      version: r.version,
      eventId: r.event_id,
      type: r.type,
      schemaVersion: r.schema_version,
      data: r.data,
      metadata: r.metadata,
    }))
    const streams = new Map<string, Row[]>()
    for (const row of rows) streams.set(row.streamId, [...(streams.get(row.streamId) ?? []), row])
    const streamIds = [...streams.keys()]
    const multi = streamIds.filter((s) => (streams.get(s) ?? []).length >= 2)
    const taken = new Set(rows.map((r) => r.position))
    const eventIds = new Set(rows.map((r) => r.eventId))
    const maxPosition = rows.reduce((m, r) => (r.position > m ? r.position : m), 0n)
    expect(rows.length).toBeGreaterThan(150)
    expect(streamIds.some((s) => s.startsWith('referral-'))).toBe(true)
    expect(streamIds.some((s) => s.startsWith('audit-'))).toBe(true)
    expect(multi.length).toBeGreaterThan(10)

    const client = await copy.pool.connect()
    try {
      // The adapter reads only below the oldest running transaction of the cluster (other test files
      // share the server): wait until every copied position is readable, so nothing hides a row.
      for (let waited = 0; ; waited += 50) {
        const { events } = await copy.readAllWithHorizon(client, { after: maxPosition - 1n, maxCount: 1 })
        if (events.length === 1 || waited > 60_000) break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      // The untouched copy verifies; its heads are the auditor's checkpoint for every run below.
      const clean = await verifyStore(readThrough(client), sha256Hasher)
      expect(clean.ok && clean.eventsChecked).toBe(rows.length)
      if (!clean.ok) return
      const checkpoint: readonly StreamHead[] = clean.heads

      const rnd = prng(SEED)
      const table = `${COPY_SCHEMA}.events`
      const rowsOf = (s: string) => streams.get(s) ?? []
      const lastOf = (s: string) => rowsOf(s).at(-1) as Row
      /** A free position after `after` (the gaps between transactions leave plenty). */
      const freePositionAfter = (after: bigint): bigint => {
        for (;;) {
          const p = after + 1n + BigInt(rnd.int(Number(maxPosition - after) + 1000))
          if (!taken.has(p)) return p
        }
      }
      const randomRow = () => rnd.pick(rows)
      /** Removal of versions lo..hi of a stream whose other events stay. */
      const removal = (s: string, lo: number, hi: number): Expected => {
        const next = rowsOf(s)[hi] // version hi + 1 (rows are 1-based versions)
        return next === undefined
          ? { kind: 'truncated', streamId: s, version: lo, globalPosition: null }
          : { kind: 'removed', streamId: s, version: lo, globalPosition: next.position }
      }

      type Mutation = (c: pg.PoolClient) => Promise<{ readonly label: string; readonly expected: Expected }>
      const altered = (row: Row): Expected => ({
        kind: 'altered',
        streamId: row.streamId,
        version: row.version,
        globalPosition: row.position,
      })
      const kinds: Record<string, Mutation> = {
        'modify data': async (c) => {
          const row = randomRow()
          await c.query(`UPDATE ${table} SET data = $1::json WHERE global_position = $2`, [
            mutateJsonText(row.data, rnd),
            row.position.toString(),
          ])
          return { label: `data of ${row.streamId} v${row.version}`, expected: altered(row) }
        },
        'modify metadata': async (c) => {
          const row = randomRow()
          await c.query(`UPDATE ${table} SET metadata = $1::json WHERE global_position = $2`, [
            mutateJsonText(row.metadata, rnd),
            row.position.toString(),
          ])
          return { label: `metadata of ${row.streamId} v${row.version}`, expected: altered(row) }
        },
        'modify type or id': async (c) => {
          const row = randomRow()
          const column = rnd.int(2) === 0 ? 'type' : 'event_id'
          const value = column === 'type' ? row.type : row.eventId
          let changed = mutateJsonText(JSON.stringify(value), rnd)
          // Sequential test ids differ in one digit: keep the id unique, as the table demands.
          while (column === 'event_id' && eventIds.has(JSON.parse(changed)))
            changed = mutateJsonText(JSON.stringify(value), rnd)
          await c.query(`UPDATE ${table} SET ${column} = $1 WHERE global_position = $2`, [
            JSON.parse(changed),
            row.position.toString(),
          ])
          return { label: `${column} of ${row.streamId} v${row.version}`, expected: altered(row) }
        },
        'modify and re-hash': async (c) => {
          const row = randomRow()
          const data: unknown = JSON.parse(mutateJsonText(row.data, rnd))
          const metadata = JSON.parse(row.metadata) as EventMetadata
          const prev = integrityOf(metadata)?.prev ?? ''
          const hash = eventHash(sha256Hasher, prev, {
            streamId: unsafeId<StreamId>(row.streamId),
            version: row.version,
            id: row.eventId,
            type: row.type,
            schemaVersion: row.schemaVersion,
            data,
            metadata,
          })
          await c.query(
            `UPDATE ${table} SET data = $1::json, metadata = $2::json WHERE global_position = $3`,
            [
              JSON.stringify(data),
              JSON.stringify(withIntegrity(metadata, { prev, hash })),
              row.position.toString(),
            ],
          )
          const next = rowsOf(row.streamId)[row.version]
          // The next event no longer chains; a re-hashed head differs from the checkpoint.
          return {
            label: `re-hashed ${row.streamId} v${row.version}`,
            expected: altered(next ?? row),
          }
        },
        'delete one event': async (c) => {
          const row = randomRow()
          await c.query(`DELETE FROM ${table} WHERE global_position = $1`, [row.position.toString()])
          return {
            label: `deleted ${row.streamId} v${row.version}`,
            expected: removal(row.streamId, row.version, row.version),
          }
        },
        'swap two events in the log (reorder)': async (c) => {
          const s = rnd.pick(multi)
          const n = rowsOf(s).length
          const a = 1 + rnd.int(n - 1)
          const b = a + 1 + rnd.int(n - a)
          const ra = rowsOf(s)[a - 1] as Row
          const rb = rowsOf(s)[b - 1] as Row
          const temp = (maxPosition + 5_000_000n).toString()
          await c.query(`UPDATE ${table} SET global_position = $1 WHERE global_position = $2`, [
            temp,
            ra.position.toString(),
          ])
          await c.query(`UPDATE ${table} SET global_position = $1 WHERE global_position = $2`, [
            ra.position.toString(),
            rb.position.toString(),
          ])
          await c.query(`UPDATE ${table} SET global_position = $1 WHERE global_position = $2`, [
            rb.position.toString(),
            temp,
          ])
          return {
            label: `swapped places of ${s} v${a} and v${b}`,
            expected: { kind: 'reordered', streamId: s, version: a, globalPosition: ra.position },
          }
        },
        'swap two version numbers': async (c) => {
          const s = rnd.pick(multi)
          const n = rowsOf(s).length
          const a = 1 + rnd.int(n - 1)
          const b = a + 1 + rnd.int(n - a)
          const ra = rowsOf(s)[a - 1] as Row
          const rb = rowsOf(s)[b - 1] as Row
          await c.query(`UPDATE ${table} SET version = 1000000 WHERE global_position = $1`, [
            ra.position.toString(),
          ])
          await c.query(`UPDATE ${table} SET version = $1 WHERE global_position = $2`, [
            a,
            rb.position.toString(),
          ])
          await c.query(`UPDATE ${table} SET version = $1 WHERE global_position = $2`, [
            b,
            ra.position.toString(),
          ])
          return {
            label: `swapped version numbers of ${s} v${a} and v${b}`,
            expected: { kind: 'altered', streamId: s, version: b, globalPosition: ra.position },
          }
        },
        'forge an event at a stream end': async (c) => {
          const s = rnd.pick(streamIds)
          const last = lastOf(s)
          const donor = randomRow()
          const position = freePositionAfter(last.position)
          await c.query(
            `INSERT INTO ${table} (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
             VALUES ($1, pg_current_xact_id(), $2, $3, $4, $5, $6, $7::json, $8::json)`,
            [
              position.toString(),
              s,
              last.version + 1,
              globalThis.crypto.randomUUID(),
              donor.type,
              donor.schemaVersion,
              donor.data,
              donor.metadata,
            ],
          )
          return {
            label: `forged ${s} v${last.version + 1} at ${position}`,
            expected: { kind: 'altered', streamId: s, version: last.version + 1, globalPosition: position },
          }
        },
        'insert a copy of an event': async (c) => {
          const row = randomRow()
          const position = freePositionAfter(row.position)
          // A forger with DDL rights: the unique constraints would refuse the copy (rolled back).
          await c.query(
            `ALTER TABLE ${table} DROP CONSTRAINT events_stream_version_key, DROP CONSTRAINT events_event_id_key`,
          )
          await c.query(
            `INSERT INTO ${table} (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
             SELECT $1, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata
               FROM ${table} WHERE global_position = $2`,
            [position.toString(), row.position.toString()],
          )
          return {
            label: `copied ${row.streamId} v${row.version} to ${position}`,
            expected: {
              kind: 'inserted',
              streamId: row.streamId,
              version: row.version,
              globalPosition: position,
            },
          }
        },
        'delete the last events of a stream': async (c) => {
          const s = rnd.pick(streamIds)
          const n = rowsOf(s).length
          const from = 1 + rnd.int(n)
          await c.query(`DELETE FROM ${table} WHERE stream_id = $1 AND version >= $2`, [s, from])
          return { label: `cut ${s} from v${from}`, expected: removal(s, from, n) }
        },
        'cut a run out of the middle of the log': async (c) => {
          const length = 1 + rnd.int(8)
          const start = 1 + rnd.int(rows.length - length - 1)
          const cut = rows.slice(start, start + length)
          await c.query(`DELETE FROM ${table} WHERE global_position BETWEEN $1 AND $2`, [
            (cut[0] as Row).position.toString(),
            (cut.at(-1) as Row).position.toString(),
          ])
          // Oracle: per stream, the cut versions are a contiguous range lo..hi. The first surviving
          // event after a gap (in log order) is reported; with none, the first truncated stream.
          const ranges = new Map<string, { lo: number; hi: number }>()
          for (const r of cut) {
            const range = ranges.get(r.streamId)
            ranges.set(r.streamId, { lo: range?.lo ?? r.version, hi: r.version })
          }
          const candidates = [...ranges].map(([s, { lo, hi }]) => removal(s, lo, hi))
          const removed = candidates
            .filter((e) => e.kind === 'removed')
            .sort((x, y) => ((x.globalPosition ?? 0n) < (y.globalPosition ?? 0n) ? -1 : 1))
          const truncated = candidates
            .filter((e) => e.kind === 'truncated')
            .sort((x, y) => (x.streamId < y.streamId ? -1 : 1))
          return {
            label: `cut ${length} events from log index ${start}`,
            expected: (removed[0] ?? truncated[0]) as Expected,
          }
        },
      }

      const outcomes = new Map<string, number>()
      for (let round = 0; round < MUTATIONS_PER_KIND; round++) {
        for (const [kind, mutate] of Object.entries(kinds)) {
          await client.query('BEGIN')
          try {
            const { label, expected } = await mutate(client)
            const report = await verifyStore(readThrough(client), sha256Hasher, { checkpoint })
            const found = report.ok
              ? 'not detected'
              : {
                  kind: report.problem.kind,
                  streamId: report.problem.streamId,
                  version: report.problem.version,
                  globalPosition: report.problem.globalPosition,
                }
            expect(found, `${kind}: ${label} (seed ${SEED}, round ${round})`).toEqual(expected)
            outcomes.set(expected.kind, (outcomes.get(expected.kind) ?? 0) + 1)
          } finally {
            await client.query('ROLLBACK')
          }
        }
      }
      expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(MUTATIONS_PER_KIND * 11)
      for (const kind of ['altered', 'removed', 'reordered', 'inserted', 'truncated'])
        expect(outcomes.get(kind), kind).toBeGreaterThan(0)

      // Every mutation was rolled back: the copy verifies as before.
      const after = await verifyStore(readThrough(client), sha256Hasher, { checkpoint })
      expect(after.ok && after.summaryHash).toBe(clean.summaryHash)
    } finally {
      client.release()
    }
  })
})
