import { PatientForgottenError, type PatientId, unsafeId } from '@referrals/core'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyUnwrapError, MasterKey } from './master-key.js'
import { createPostgresPatientKeyStore, type PostgresPatientKeyStore } from './postgres-key-store.js'

let db: TestDatabase
let pool: pg.Pool
const masterKey = MasterKey.generate()
const stores: PostgresPatientKeyStore[] = []
const open = async (options: Partial<Parameters<typeof createPostgresPatientKeyStore>[0]> = {}) => {
  const store = await createPostgresPatientKeyStore({ pool, masterKey, ...options })
  stores.push(store)
  return store
}
const patient = (n: number | string) => unsafeId<PatientId>(`pat-${n}`)

beforeAll(async () => {
  db = await createTestDatabase()
  pool = new pg.Pool({ connectionString: db.url, max: 10 })
  // Idle clients are terminated when the database is dropped at the end: not a test failure.
  pool.on('error', () => undefined)
})
afterAll(async () => {
  for (const store of stores) await store.close()
  await pool.end()
  await db.drop()
})

describe('PostgreSQL patient key store', () => {
  it('creates one key per patient and finds it again by kid, also from another instance', async () => {
    const store = await open()
    const first = await store.getOrCreate(patient(1))
    const again = await store.getOrCreate(patient(1))
    expect(first.key).toHaveLength(32)
    expect(again.kid).toBe(first.kid)
    expect(Buffer.from(again.key).equals(Buffer.from(first.key))).toBe(true)
    const other = await open()
    expect(Buffer.from((await other.get(first.kid)) ?? []).equals(Buffer.from(first.key))).toBe(true)
    expect((await store.getOrCreate(patient(2))).kid).not.toBe(first.kid)
    expect(await store.get('k_unknown')).toBeNull()
  })

  it('answers concurrent lookups by kid from shared statements, each caller its own key or null', async () => {
    const store = await open()
    const keys = await Promise.all([1, 2, 3].map((n) => store.getOrCreate(patient(`lookup-${n}`))))
    let statements = 0
    const query = pool.query.bind(pool)
    pool.query = ((...args: Parameters<typeof pool.query>) => {
      statements++
      return (query as (...a: unknown[]) => unknown)(...args)
    }) as typeof pool.query
    const asked = [...keys.map((k) => k.kid), keys[0]?.kid ?? '', 'k_unknown', keys[2]?.kid ?? '']
    let got: (Uint8Array | null)[]
    try {
      got = await Promise.all(asked.map((kid) => store.get(kid)))
    } finally {
      pool.query = query as typeof pool.query
    }
    // The first lookup goes alone; the five asked while it ran share the next statement.
    expect(statements).toBe(2)
    const expected = [keys[0], keys[1], keys[2], keys[0], null, keys[2]].map((k) =>
      k === null || k === undefined ? null : Buffer.from(k.key).toString('hex'),
    )
    expect(got.map((k) => (k === null ? null : Buffer.from(k).toString('hex')))).toEqual(expected)
    // Each caller gets its own copy: zeroing one leaves the other intact.
    got[0]?.fill(0)
    expect(Buffer.from(got[3] ?? []).toString('hex')).toBe(expected[3])
  })

  it('gives every concurrent caller the same key for a new patient', async () => {
    const store = await open()
    const results = await Promise.all(Array.from({ length: 20 }, () => store.getOrCreate(patient('race'))))
    expect(new Set(results.map((r) => r.kid)).size).toBe(1)
    const count = await pool.query(
      `SELECT count(*)::int AS n FROM referrals_keys.patient_keys WHERE patient_id = $1`,
      ['pat-race'],
    )
    expect(count.rows[0].n).toBe(1)
  })

  it('creates the keys of concurrent new patients in shared statements, each its own, a forgotten one refused', async () => {
    const store = await open()
    await store.destroy(patient('gc-forgotten'))
    const names = [...Array.from({ length: 40 }, (_, i) => `gc-${i}`), 'gc-forgotten', 'gc-3', 'gc-7']
    let creating = 0
    const query = pool.query.bind(pool)
    pool.query = ((...args: Parameters<typeof pool.query>) => {
      if (String(args[0]).includes('create_patient_key')) creating++
      return (query as (...a: unknown[]) => unknown)(...args)
    }) as typeof pool.query
    let results: PromiseSettledResult<{ kid: string; key: Uint8Array }>[]
    try {
      results = await Promise.allSettled(names.map((n) => store.getOrCreate(patient(n))))
    } finally {
      pool.query = query as typeof pool.query
    }
    // The first alone, the other 40 distinct patients together, the two repeated ones after them.
    expect(creating).toBeLessThanOrEqual(4)
    const byName = new Map(names.map((n, i) => [n, results[i]]))
    expect(byName.get('gc-forgotten')).toMatchObject({ status: 'rejected' })
    expect((byName.get('gc-forgotten') as PromiseRejectedResult).reason).toBeInstanceOf(PatientForgottenError)
    const fulfilled = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    expect(fulfilled).toHaveLength(42)
    // 40 patients, 40 keys; a repeated patient got the key stored for it the first time.
    expect(new Set(fulfilled.map((k) => k.kid)).size).toBe(40)
    const kidOf = (i: number) => (results[i] as PromiseFulfilledResult<{ kid: string }>).value.kid
    expect(kidOf(41)).toBe(kidOf(3))
    expect(kidOf(42)).toBe(kidOf(7))
    for (const k of fulfilled)
      expect(Buffer.from((await store.get(k.kid)) ?? []).equals(Buffer.from(k.key))).toBe(true)
    const stored = await pool.query(
      `SELECT count(*)::int AS n FROM referrals_keys.patient_keys WHERE patient_id LIKE 'pat-gc-%'`,
    )
    expect(stored.rows[0].n).toBe(40)
  })

  it('never leaves a key behind when batched creations race forgets from another instance, and never deadlocks', async () => {
    const store = await open({ vacuumOnDestroy: 'none' })
    const other = await open({ vacuumOnDestroy: 'none' })
    for (let round = 0; round < 5; round++) {
      const ps = Array.from({ length: 30 }, (_, i) => patient(`gc-race-${round}-${i}`))
      const forgotten = ps.filter((_, i) => i % 3 === 0)
      const results = await Promise.allSettled([
        ...ps.map((p) => store.getOrCreate(p)),
        ...forgotten.map((p) => other.destroy(p)),
        ...[...ps].reverse().map((p) => other.getOrCreate(p)),
      ])
      for (const r of results)
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PatientForgottenError)
      const keys = await pool.query<{ patient_id: string }>(
        `SELECT patient_id FROM referrals_keys.patient_keys WHERE patient_id = ANY ($1)`,
        [ps],
      )
      const kept = new Set(keys.rows.map((r) => r.patient_id))
      for (const p of ps) expect(kept.has(p)).toBe(!forgotten.includes(p))
    }
  })

  it('stores keys only wrapped, in its own schema', async () => {
    const store = await open()
    const { kid, key } = await store.getOrCreate(patient(3))
    const row = await pool.query(`SELECT wrapped_key FROM referrals_keys.patient_keys WHERE kid = $1`, [kid])
    const wrapped: Buffer = row.rows[0].wrapped_key
    expect(wrapped).toHaveLength(60)
    expect(wrapped.includes(Buffer.from(key))).toBe(false)
  })

  it('cannot unwrap with another master key, nor after a key row is moved to another patient', async () => {
    const store = await open()
    const { kid } = await store.getOrCreate(patient(4))
    const intruder = await open({ masterKey: MasterKey.generate() })
    await expect(intruder.get(kid)).rejects.toBeInstanceOf(KeyUnwrapError)
    await store.getOrCreate(patient(5))
    await pool.query(
      `UPDATE referrals_keys.patient_keys SET wrapped_key = (SELECT wrapped_key FROM referrals_keys.patient_keys WHERE patient_id = 'pat-5') WHERE kid = $1`,
      [kid],
    )
    await expect(store.get(kid)).rejects.toBeInstanceOf(KeyUnwrapError)
  })

  it('forgets for good: destroy deletes the key, leaves a tombstone, getOrCreate then refuses, also from another instance', async () => {
    const store = await open()
    const { kid } = await store.getOrCreate(patient(6))
    const kept = await store.getOrCreate(patient('6-kept'))
    await store.destroy(patient(6))
    expect(await store.get(kid)).toBeNull()
    const refused = await store.getOrCreate(patient(6)).then(
      () => null,
      (e: unknown) => e,
    )
    expect(refused).toBeInstanceOf(PatientForgottenError)
    expect((refused as Error).message).not.toContain('pat-6')
    await store.destroy(patient(6))
    const other = await open()
    await expect(other.getOrCreate(patient(6))).rejects.toBeInstanceOf(PatientForgottenError)
    expect(await other.get(kid)).toBeNull()
    const keys = await pool.query(
      `SELECT count(*)::int AS n FROM referrals_keys.patient_keys WHERE patient_id = $1`,
      ['pat-6'],
    )
    expect(keys.rows[0].n).toBe(0)
    // The tombstone holds the pseudonymous id and a time, no key material.
    const tombstone = await pool.query(
      `SELECT * FROM referrals_keys.forgotten_patients WHERE patient_id = $1`,
      ['pat-6'],
    )
    expect(tombstone.rows).toHaveLength(1)
    expect(Object.keys(tombstone.rows[0]).sort()).toEqual(['forgotten_at', 'patient_id'])
    // Other patients keep their keys.
    expect((await store.getOrCreate(patient('6-kept'))).kid).toBe(kept.kid)
  })

  it('forgetting a patient who has no key yet also stops a key being created for them', async () => {
    const store = await open()
    await store.destroy(patient('never-keyed'))
    await expect(store.getOrCreate(patient('never-keyed'))).rejects.toBeInstanceOf(PatientForgottenError)
    const keys = await pool.query(
      `SELECT count(*)::int AS n FROM referrals_keys.patient_keys WHERE patient_id = $1`,
      ['pat-never-keyed'],
    )
    expect(keys.rows[0].n).toBe(0)
  })

  it('never leaves a key behind when creating and forgetting race', async () => {
    const store = await open({ vacuumOnDestroy: 'none' })
    const other = await open({ vacuumOnDestroy: 'none' })
    for (let round = 0; round < 25; round++) {
      const p = patient(`race-forget-${round}`)
      const results = await Promise.allSettled([
        ...Array.from({ length: 5 }, () => store.getOrCreate(p)),
        other.destroy(p),
        ...Array.from({ length: 5 }, () => other.getOrCreate(p)),
      ])
      for (const r of results)
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PatientForgottenError)
      await expect(store.getOrCreate(p)).rejects.toBeInstanceOf(PatientForgottenError)
      const keys = await pool.query(
        `SELECT count(*)::int AS n FROM referrals_keys.patient_keys WHERE patient_id = $1`,
        [p],
      )
      expect(keys.rows[0].n).toBe(0)
      for (const r of results)
        if (r.status === 'fulfilled' && 'kid' in (r.value ?? {}))
          expect(await store.get((r.value as { kid: string }).kid)).toBeNull()
    }
  })

  it('VACUUM (FULL) on destroy leaves no copy of the wrapped key in the table file', async () => {
    const store = await open({ schema: 'keys_vacuum' })
    const { kid } = await store.getOrCreate(patient(7))
    await store.getOrCreate(patient(8))
    const row = await pool.query(`SELECT wrapped_key FROM keys_vacuum.patient_keys WHERE kid = $1`, [kid])
    const wrapped: Buffer = row.rows[0].wrapped_key
    const fileHolds = async () => {
      await pool.query('CHECKPOINT')
      const file = await pool.query(
        `SELECT position($1::bytea IN pg_read_binary_file(pg_relation_filepath('keys_vacuum.patient_keys'))) AS at`,
        [wrapped],
      )
      return file.rows[0].at > 0
    }
    expect(await fileHolds()).toBe(true)
    await store.destroy(patient(7))
    expect(await fileHolds()).toBe(false)
    expect(await store.get(kid)).toBeNull()
    await expect(store.getOrCreate(patient(7))).rejects.toBeInstanceOf(PatientForgottenError)
  })

  it('without VACUUM the deleted wrapped key stays in the table file (why FULL is the default)', async () => {
    const schema = 'keys_none'
    const store = await open({ schema, vacuumOnDestroy: 'none' })
    const { kid } = await store.getOrCreate(patient(9))
    await store.getOrCreate(patient(10))
    const row = await pool.query(`SELECT wrapped_key FROM ${schema}.patient_keys WHERE kid = $1`, [kid])
    await store.destroy(patient(9))
    await pool.query('CHECKPOINT')
    const file = await pool.query(
      `SELECT position($1::bytea IN pg_read_binary_file(pg_relation_filepath('${schema}.patient_keys'))) AS at`,
      [row.rows[0].wrapped_key],
    )
    expect(file.rows[0].at).toBeGreaterThan(0)
    expect(await store.get(kid)).toBeNull()
  })

  it('rotates the master key: reads through previous keys, re-wraps every row, then needs only the new key', async () => {
    const schema = 'keys_rotation'
    const oldMaster = MasterKey.generate()
    const newMaster = MasterKey.generate()
    const before = await open({ schema, masterKey: oldMaster })
    const created = await Promise.all([11, 12, 13].map((n) => before.getOrCreate(patient(n))))
    const oldWrapped = await pool.query(`SELECT wrapped_key FROM ${schema}.patient_keys ORDER BY kid`)

    const during = await open({ schema, masterKey: newMaster, previousMasterKeys: [oldMaster] })
    for (const { kid, key } of created)
      expect(Buffer.from((await during.get(kid)) ?? []).equals(key)).toBe(true)
    expect(await during.rewrapAll()).toEqual({ rewrapped: 3 })
    expect(await during.rewrapAll()).toEqual({ rewrapped: 0 })

    const after = await open({ schema, masterKey: newMaster })
    for (const { kid, key } of created)
      expect(Buffer.from((await after.get(kid)) ?? []).equals(key)).toBe(true)
    await expect(before.get(created[0]?.kid ?? '')).rejects.toBeInstanceOf(KeyUnwrapError)

    await pool.query('CHECKPOINT')
    for (const row of oldWrapped.rows) {
      const file = await pool.query(
        `SELECT position($1::bytea IN pg_read_binary_file(pg_relation_filepath('${schema}.patient_keys'))) AS at`,
        [row.wrapped_key],
      )
      expect(file.rows[0].at).toBe(0)
    }
  })

  it('refuses a schema name that is not a plain identifier', async () => {
    await expect(open({ schema: 'keys"; DROP TABLE x; --' })).rejects.toThrow(/identifier/)
  })
})
