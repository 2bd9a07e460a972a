import type pg from 'pg'

/**
 * The narrow durations table of the referral facts (`<schema>.referral_facts_durations`,
 * migration 8): one row per facts row with only what `/reports/timings` and `/reports/wait-times`
 * read when they group by the pool, the sender or the receiving practice (or nothing) and filter
 * by those alone — the sending time, the two practices, the pool key and the four durations in
 * epoch milliseconds (null when the facts row has no such duration). A facts row is ~720 bytes, a
 * durations row ~150: those reports scan ~5× fewer pages, sort a stored `COLLATE "C"` pool key
 * instead of a concatenation computed per row, and sort integers. Every referral has a row (not
 * only those with a duration): a cell's count and "held by the viewer" are over all its referrals.
 *
 * Kept by the facts projection itself, in the same transaction as the facts rows (no trigger):
 * after each batch's upsert, the rows of the referrals it touched are written again from their
 * facts rows (`refreshDurations`, the same `DURATIONS_SELECT` as the fill); the rebuild fills it
 * from the rebuilt rows with one `INSERT … SELECT` (`durationsFillSql`), as migration 8 does.
 * Writing `referral_facts` by hand does not update it.
 */

/** The pool key of a facts row, exactly as the reports' `pool` dimension (`dimensionSql`). */
export const POOL_SQL = `region_id || ':' || specialty_id || ':' || category_id || ':' || coalesce(subcategory_id, '*')`

export const DURATIONS_COLUMNS = [
  'referral_id',
  'sent_at',
  'sender_practice_id',
  'receiving_practice_id',
  'pool',
  'accept_ms',
  'schedule_ms',
  'complete_ms',
  'wait_ms',
] as const

/**
 * A durations row from a facts row: the differences of the stored epoch-ms columns (migration 4),
 * so `accept_ms / 3_600_000` is the core's hours to accept exactly (integers below 2^53). The wait
 * counts only with a holder, as in `waitTimesOf`.
 */
const DURATIONS_SELECT = `referral_id, sent_at, sender_practice_id, receiving_practice_id, ${POOL_SQL},
  accepted_at_ms - sent_at_ms, scheduled_at_ms - sent_at_ms, completed_at_ms - sent_at_ms,
  CASE WHEN receiving_practice_id IS NOT NULL THEN appointment_at_ms - sent_at_ms END`

/** Fills the (empty) durations table from every facts row: the rebuild's, and migration 8's. */
export const durationsFillSql = (facts: string, durations: string): string =>
  `INSERT INTO ${durations} (${DURATIONS_COLUMNS.join(', ')}) SELECT ${DURATIONS_SELECT} FROM ${facts}`

/** Writes again the durations rows of `referralIds` from their facts rows (a batch's change). */
export const refreshDurations = async (
  client: pg.PoolClient,
  facts: string,
  durations: string,
  referralIds: readonly string[],
): Promise<void> => {
  if (referralIds.length === 0) return
  await client.query(
    `INSERT INTO ${durations} AS d (${DURATIONS_COLUMNS.join(', ')})
     SELECT ${DURATIONS_SELECT} FROM ${facts} WHERE referral_id = ANY($1::text[])
     ON CONFLICT (referral_id) DO UPDATE SET ${DURATIONS_COLUMNS.slice(1)
       .map((c) => `${c} = EXCLUDED.${c}`)
       .join(', ')}`,
    [referralIds],
  )
}
