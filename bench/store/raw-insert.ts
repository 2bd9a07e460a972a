/**
 * The raw commit limit the benchmarks compare against: a one-row INSERT into a table of its own
 * (one primary key, the payload columns of an event) that commits on its own, with fsync and
 * synchronous commit as the stores have them. Shared by `bench/store` and `bench/http`.
 */
export const RAW_TABLE_DDL = `CREATE TABLE IF NOT EXISTS bench_raw_commit (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       stream_id text NOT NULL, event_id text NOT NULL, type text NOT NULL, data json NOT NULL, metadata json NOT NULL)`

export const RAW_INSERT_SQL =
  'INSERT INTO bench_raw_commit (stream_id, event_id, type, data, metadata) VALUES ($1, $2, $3, $4, $5)'

/** The pg `Pool`/`PoolClient` surface `rawCommitsPerSecond` needs (structural, so any pg version fits). */
interface Connectable {
  connect(): Promise<{ query(q: unknown): Promise<unknown>; release(): void }>
}

/**
 * Measures the raw commit limit for `ms` milliseconds on one client of `pool`: one-row INSERTs,
 * each committing on its own. Commits per second, one decimal.
 */
export const rawCommitsPerSecond = async (pool: Connectable, ms: number): Promise<number> => {
  const client = await pool.connect()
  try {
    await client.query(RAW_TABLE_DDL)
    const data = JSON.stringify({ referralId: 'r', note: 'x'.repeat(120) })
    const meta = JSON.stringify({ actor: { kind: 'system', component: 'bench' } })
    let commits = 0
    const started = performance.now()
    while (performance.now() - started < ms) {
      await client.query({
        name: 'bench.raw',
        text: RAW_INSERT_SQL,
        values: [`raw-${commits}`, `e-${commits}`, 'BenchRaw', data, meta],
      })
      commits++
    }
    return Math.round((commits / (performance.now() - started)) * 1000 * 10) / 10
  } finally {
    client.release()
  }
}
