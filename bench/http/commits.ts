/**
 * Write transactions counted on the database itself: `pg_snapshot_xmax(pg_current_snapshot())`
 * is the first transaction id not yet assigned, and PostgreSQL assigns an id to every transaction
 * that writes (and only to those: a read-only statement gets none), so the difference between two
 * readings taken while nothing is in flight is the number of write transactions — commits that
 * wait for a WAL flush — in between, whoever made them. Exact and immediate, unlike the
 * `pg_stat_database` counters, which backends report up to seconds late (and which count
 * read-only statements as commits too).
 */

/** The pg `Pool`/`Client` surface needed (structural, so any pg version fits). */
interface Queryable {
  query(text: string): Promise<{ rows: { xmax: string }[] }>
}

/** The next transaction id PostgreSQL will assign (as a number: ids stay far below 2^53). */
export const nextTransactionId = async (db: Queryable): Promise<number> => {
  const result = await db.query('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xmax')
  const xmax = result.rows[0]?.xmax
  if (xmax === undefined) throw new Error('pg_current_snapshot returned no row')
  return Number(xmax)
}
