import { groupCommit, PatientForgottenError, type PatientId, type PatientKeyStore } from '@referrals/core'
import pg from 'pg'
import { KeyUnwrapError, type MasterKey, newDataKey, unwrapDataKey, wrapDataKey } from './master-key.js'

export interface PostgresPatientKeyStoreOptions {
  /** A pool to use (not closed by `close()`), or a connection string for a pool of its own. */
  readonly pool?: pg.Pool
  readonly connectionString?: string
  /** Schema of the key and tombstone tables; created on start. Default `referrals_keys`. */
  readonly schema?: string
  /** Wraps every new data key, and re-wraps old ones in `rewrapAll`. */
  readonly masterKey: MasterKey
  /** Earlier master keys, still accepted for reading until `rewrapAll` has moved every key off them. */
  readonly previousMasterKeys?: readonly MasterKey[]
  /**
   * What `destroy` does after deleting the key row. `full` (default) runs `VACUUM (FULL)` on the
   * key table, which rewrites it without the dead row; `plain` runs `VACUUM`, which frees the row
   * for reuse without rewriting the file; `none` leaves it to autovacuum. See the README.
   */
  readonly vacuumOnDestroy?: 'full' | 'plain' | 'none'
}

export interface PostgresPatientKeyStore extends PatientKeyStore {
  /**
   * Master key rotation: re-wraps every data key not wrapped under `masterKey` (it must be wrapped
   * under one of `previousMasterKeys`), in batches, each row by compare-and-swap, then applies
   * `vacuumOnDestroy` so the old wrappings leave the table file. Once it returns, the previous
   * master keys can be destroyed: every copy of a row wrapped under them (WAL, backups) is dead.
   */
  readonly rewrapAll: () => Promise<{ readonly rewrapped: number }>
  readonly close: () => Promise<void>
}

interface KeyRow {
  readonly kid: string
  readonly patient_id: string
  readonly wrapped_key: Buffer
  readonly master_key_id: string
}

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * Patient data keys in PostgreSQL, in a schema of their own (give it its own database role in
 * production: the event store's role needs no access to it). Each row holds a data key wrapped
 * with AES-256-GCM under the master key, bound to its kid and patient id. Forgetting deletes the
 * row and, in the same transaction, records the patient in `forgotten_patients` (patient id and
 * time, no key material), so no new key is ever created for them: `getOrCreate` throws
 * `PatientForgottenError`. Creating a key and forgetting take a per-patient advisory lock, so a
 * key cannot be created alongside a concurrent forget. The wrapped key left in PostgreSQL files,
 * WAL or backups opens only with the master key.
 */
export const createPostgresPatientKeyStore = async (
  options: PostgresPatientKeyStoreOptions,
): Promise<PostgresPatientKeyStore> => {
  const schema = options.schema ?? 'referrals_keys'
  if (!SCHEMA_PATTERN.test(schema))
    throw new RangeError('key store schema must be a lower-case SQL identifier')
  const ownPool = options.pool === undefined
  const pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: 5 })
  if (ownPool) pool.on('error', () => undefined)
  const table = `"${schema}".patient_keys`
  const forgottenTable = `"${schema}".forgotten_patients`
  const vacuum = options.vacuumOnDestroy ?? 'full'

  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`referrals-key-store:${schema}`])
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table} (
         patient_id text PRIMARY KEY,
         kid text NOT NULL UNIQUE,
         wrapped_key bytea NOT NULL,
         master_key_id text NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now()
       )`,
    )
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${forgottenTable} (
         patient_id text PRIMARY KEY,
         forgotten_at timestamptz NOT NULL DEFAULT now()
       )`,
    )
    // Key creation in one round trip (it was BEGIN, lock, tombstone check, insert, select, COMMIT):
    // a VOLATILE PL/pgSQL function takes a new snapshot per statement, so once it holds the
    // patient's lock (the one `destroy` takes) its tombstone check sees every committed forget, and
    // its select sees the key of a concurrent creator that committed first. Called outside a
    // transaction, the statement is its own transaction: the lock is held until it commits.
    await client.query(
      `CREATE OR REPLACE FUNCTION "${schema}".create_patient_key(
         p_patient_id text, p_kid text, p_wrapped_key bytea, p_master_key_id text)
       RETURNS TABLE (kid text, patient_id text, wrapped_key bytea, master_key_id text, forgotten boolean)
       LANGUAGE plpgsql VOLATILE AS $fn$
       #variable_conflict use_column
       BEGIN
         PERFORM pg_advisory_xact_lock(hashtext('referrals-key-store:${schema}:patient:' || p_patient_id));
         IF EXISTS (SELECT 1 FROM ${forgottenTable} f WHERE f.patient_id = p_patient_id) THEN
           RETURN QUERY SELECT NULL::text, p_patient_id, NULL::bytea, NULL::text, true;
           RETURN;
         END IF;
         INSERT INTO ${table} AS k (patient_id, kid, wrapped_key, master_key_id)
           VALUES (p_patient_id, p_kid, p_wrapped_key, p_master_key_id)
           ON CONFLICT (patient_id) DO NOTHING;
         RETURN QUERY SELECT k.kid, k.patient_id, k.wrapped_key, k.master_key_id, false
           FROM ${table} k WHERE k.patient_id = p_patient_id;
       END
       $fn$`,
    )
    // The same for many patients in one statement (group commit of key creation): the patients'
    // locks are taken in the order of their lock ids, the same in every batch of every process, so
    // two batches (or a batch and a forget) cannot deadlock. Each lock is held until the commit.
    await client.query(
      `CREATE OR REPLACE FUNCTION "${schema}".create_patient_keys(
         p_patient_ids text[], p_kids text[], p_wrapped_keys bytea[], p_master_key_ids text[])
       RETURNS TABLE (kid text, patient_id text, wrapped_key bytea, master_key_id text, forgotten boolean)
       LANGUAGE plpgsql VOLATILE AS $fn$
       #variable_conflict use_column
       DECLARE
         r record;
       BEGIN
         FOR r IN
           SELECT u.p, u.k, u.w, u.m, hashtext('referrals-key-store:${schema}:patient:' || u.p) AS lock_id
           FROM unnest(p_patient_ids, p_kids, p_wrapped_keys, p_master_key_ids) AS u(p, k, w, m)
           ORDER BY 5, 1
         LOOP
           PERFORM pg_advisory_xact_lock(r.lock_id);
           IF EXISTS (SELECT 1 FROM ${forgottenTable} f WHERE f.patient_id = r.p) THEN
             RETURN QUERY SELECT NULL::text, r.p, NULL::bytea, NULL::text, true;
             CONTINUE;
           END IF;
           INSERT INTO ${table} AS k (patient_id, kid, wrapped_key, master_key_id)
             VALUES (r.p, r.k, r.w, r.m)
             ON CONFLICT (patient_id) DO NOTHING;
           RETURN QUERY SELECT k.kid, k.patient_id, k.wrapped_key, k.master_key_id, false
             FROM ${table} k WHERE k.patient_id = r.p;
         END LOOP;
       END
       $fn$`,
    )
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  } finally {
    client.release()
  }

  const current = options.masterKey
  const currentId = current.fingerprint()
  const masters = new Map<string, MasterKey>([
    ...(options.previousMasterKeys ?? []).map((k): [string, MasterKey] => [k.fingerprint(), k]),
    [currentId, current],
  ])
  const unwrap = (row: KeyRow): Buffer => {
    const master = masters.get(row.master_key_id)
    if (master === undefined) throw new KeyUnwrapError(row.kid)
    return unwrapDataKey(master, row.kid, row.patient_id, row.wrapped_key)
  }
  const columns = 'kid, patient_id, wrapped_key, master_key_id'
  const runVacuum = async () => {
    if (vacuum !== 'none') await pool.query(vacuum === 'full' ? `VACUUM (FULL) ${table}` : `VACUUM ${table}`)
  }

  /**
   * Key lookups by kid are grouped: while one `SELECT` is in flight, the lookups that arrive queue,
   * and the next `SELECT` fetches them all (`kid = ANY($1)`). Concurrent reads of PHI (every
   * `GET /referrals/:id` opens its referral's PHI) then share one statement instead of one each.
   * Nothing is cached: each lookup is answered by a statement sent after it was asked, so a key
   * destroyed before the lookup is never returned. Each caller gets its own copy of the key.
   */
  interface Lookup {
    readonly kid: string
    readonly resolve: (key: Buffer | null) => void
    readonly reject: (error: unknown) => void
  }
  const lookups: Lookup[] = []
  let looking = false
  const MAX_LOOKUPS = 500
  const lookUp = async (): Promise<void> => {
    looking = true
    try {
      while (lookups.length > 0) {
        const batch = lookups.splice(0, MAX_LOOKUPS)
        const kids = [...new Set(batch.map((l) => l.kid))]
        let rows: readonly KeyRow[]
        try {
          const found =
            kids.length === 1
              ? await pool.query<KeyRow>(`SELECT ${columns} FROM ${table} WHERE kid = $1`, kids)
              : await pool.query<KeyRow>(`SELECT ${columns} FROM ${table} WHERE kid = ANY($1::text[])`, [
                  kids,
                ])
          rows = found.rows
        } catch (error) {
          for (const l of batch) l.reject(error)
          continue
        }
        const byKid = new Map(rows.map((r) => [r.kid, r]))
        for (const l of batch) {
          const row = byKid.get(l.kid)
          try {
            l.resolve(row === undefined ? null : unwrap(row))
          } catch (error) {
            l.reject(error)
          }
        }
      }
    } finally {
      looking = false
    }
  }

  /**
   * Key creation is group-committed (`groupCommit` from the core, as the HTTP idempotency records
   * are): while one creating statement is in flight, the creations that arrive queue, and the next
   * statement (`create_patient_keys`; one alone: `create_patient_key`) creates them
   * all in one transaction, one commit instead of one each. Each caller is answered when that
   * statement has committed, so an answered key is as durable as before. Two creations for one
   * patient never share a statement (the later one waits and gets the key the first stored), and
   * a statement that fails is retried one patient at a time, so a bad one fails only its caller.
   */
  type CreatedRow = KeyRow & { readonly forgotten: boolean }
  interface Creation {
    readonly patientId: string
    readonly kid: string
    readonly wrapped: Buffer
  }
  const creations = groupCommit<Creation, CreatedRow>({
    keyOf: (c) => c.patientId,
    write: async (batch) => {
      const [only] = batch
      const rows = (
        batch.length === 1 && only !== undefined
          ? await pool.query<CreatedRow>(
              `SELECT ${columns}, forgotten FROM "${schema}".create_patient_key($1, $2, $3, $4)`,
              [only.patientId, only.kid, only.wrapped, currentId],
            )
          : await pool.query<CreatedRow>(
              `SELECT ${columns}, forgotten FROM "${schema}".create_patient_keys($1::text[], $2::text[], $3::bytea[], $4::text[])`,
              [
                batch.map((c) => c.patientId),
                batch.map((c) => c.kid),
                batch.map((c) => c.wrapped),
                batch.map(() => currentId),
              ],
            )
      ).rows
      const byPatient = new Map(rows.map((r) => [r.patient_id, r]))
      return batch.map((c) => {
        const row = byPatient.get(c.patientId)
        if (row === undefined) throw new Error('patient data key vanished while being created')
        return row
      })
    },
  })

  /** Runs `work` in a transaction holding the patient's advisory lock (key creation vs forgetting). */
  const lockedForPatient = async <A>(patientId: PatientId, work: (c: pg.PoolClient) => Promise<A>) => {
    const c = await pool.connect()
    try {
      await c.query('BEGIN')
      await c.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [
        `referrals-key-store:${schema}:patient:${patientId}`,
      ])
      const result = await work(c)
      await c.query('COMMIT')
      return result
    } catch (error) {
      await c.query('ROLLBACK').catch(() => undefined)
      throw error
    } finally {
      c.release()
    }
  }

  return {
    getOrCreate: async (patientId) => {
      // One round trip whether or not the patient has a key: `create_patient_key(s)` inserts a new
      // key unless one exists and returns the stored one either way (a lookup first cost a second
      // statement for every new patient, and most sends name a new one). For an existing patient
      // the fresh key is discarded unused. Under the patient's lock (in the function): no forget
      // can run between the tombstone check, the insert and reading a concurrent creator's key.
      const { kid, key } = newDataKey()
      const row = await creations
        .submit({ patientId, kid, wrapped: wrapDataKey(current, kid, patientId, key) })
        .then((first) => {
          if (first.forgotten) throw new PatientForgottenError()
          return first
        })
        .catch((error: unknown) => {
          key.fill(0)
          throw error
        })
      if (row.kid === kid) return { kid, key }
      key.fill(0)
      return { kid: row.kid, key: unwrap(row) }
    },
    get: (kid) =>
      new Promise<Buffer | null>((resolve, reject) => {
        lookups.push({ kid, resolve, reject })
        if (!looking) void lookUp()
      }),
    destroy: async (patientId) => {
      const deleted = await lockedForPatient(patientId, async (c) => {
        await c.query(`INSERT INTO ${forgottenTable} (patient_id) VALUES ($1) ON CONFLICT DO NOTHING`, [
          patientId,
        ])
        return c.query(`DELETE FROM ${table} WHERE patient_id = $1`, [patientId])
      })
      if (deleted.rowCount !== 0) await runVacuum()
    },
    rewrapAll: async () => {
      let rewrapped = 0
      for (;;) {
        const batch = await pool.query<KeyRow>(
          `SELECT ${columns} FROM ${table} WHERE master_key_id <> $1 ORDER BY kid LIMIT 500`,
          [currentId],
        )
        if (batch.rows.length === 0) break
        for (const row of batch.rows) {
          const key = unwrap(row)
          const updated = await pool.query(
            `UPDATE ${table} SET wrapped_key = $1, master_key_id = $2 WHERE kid = $3 AND master_key_id = $4`,
            [wrapDataKey(current, row.kid, row.patient_id, key), currentId, row.kid, row.master_key_id],
          )
          key.fill(0)
          rewrapped += updated.rowCount ?? 0
        }
      }
      if (rewrapped > 0) await runVacuum()
      return { rewrapped }
    },
    close: async () => {
      if (ownPool) await pool.end()
    },
  }
}
