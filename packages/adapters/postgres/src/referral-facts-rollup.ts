import type { ReferralFacts } from '@referrals/core'
import type pg from 'pg'
import { factColumn } from './referral-facts-columns.js'

/**
 * The monthly rollup of the referral facts (`<schema>.referral_facts_monthly`, migration 6): per
 * month of `sent_at` and per combination of every dimension a fact report can group or filter by
 * (except `week`), the funnel's counts. `/reports/funnel` and `/reports/attribution` read the
 * months a period covers whole from it, and only the period's partial months from the facts rows
 * (referral-facts-report.ts). It is written by the facts projection itself, in the same
 * transaction as the facts rows it sums (no trigger): each batch adds the new rows' counts and
 * takes away the old ones' (`applyRollupDelta`); the rebuild fills it from the rebuilt rows with
 * one `GROUP BY` (`ROLLUP_FILL_SQL`). Writing `referral_facts` by hand does not update it.
 */

/** The dimensions of a rollup row, as facts fields (the month comes from `sentAt`). */
export const ROLLUP_KEY_FIELDS = [
  'senderPracticeId',
  'receivingPracticeId',
  'regionId',
  'specialtyId',
  'categoryId',
  'subcategoryId',
  'urgency',
  'route',
  'channel',
  'campaign',
  'location',
  'serviceLine',
  'referringPracticeId',
] as const satisfies readonly (keyof ReferralFacts)[]
export const ROLLUP_KEY_COLUMNS = ['month', ...ROLLUP_KEY_FIELDS.map(factColumn)] as const

/** Each count column and its definition over one facts row, in SQL (used to fill and to read). */
export const ROLLUP_COUNTS = [
  ['n', '1', 'integer'],
  ['delivered', '(first_delivered_at IS NOT NULL)::int', 'integer'],
  ['accepted', '(accepted_at IS NOT NULL)::int', 'integer'],
  ['scheduled', '(scheduled_at IS NOT NULL)::int', 'integer'],
  ['completed', '(completed_at IS NOT NULL)::int', 'integer'],
  ['deliveries', 'delivery_count::bigint', 'bigint'],
  ['declines', 'decline_count::bigint', 'bigint'],
  ['expiries', 'expiry_count::bigint', 'bigint'],
  ['no_shows', 'no_show_count::bigint', 'bigint'],
  [
    'cancelled_before_accept',
    '(cancelled_at IS NOT NULL AND scheduled_at IS NULL AND accepted_at IS NULL)::int',
    'integer',
  ],
  [
    'cancelled_after_accept',
    '(cancelled_at IS NOT NULL AND scheduled_at IS NULL AND accepted_at IS NOT NULL)::int',
    'integer',
  ],
  ['cancelled_after_schedule', '(cancelled_at IS NOT NULL AND scheduled_at IS NOT NULL)::int', 'integer'],
  ['returned', '(returned_at IS NOT NULL)::int', 'integer'],
  ['unassigned', "(status = 'unassigned')::int", 'integer'],
] as const

/** The same counts of one facts row in the process (the batch deltas); equal to `ROLLUP_COUNTS`. */
const countsOf = (f: ReferralFacts): number[] => {
  const cancelled = f.cancelledAt !== null
  const accepted = f.acceptedAt !== null
  const scheduled = f.scheduledAt !== null
  return [
    1,
    f.firstDeliveredAt === null ? 0 : 1,
    accepted ? 1 : 0,
    scheduled ? 1 : 0,
    f.completedAt === null ? 0 : 1,
    f.deliveryCount,
    f.declineCount,
    f.expiryCount,
    f.noShowCount,
    cancelled && !scheduled && !accepted ? 1 : 0,
    cancelled && !scheduled && accepted ? 1 : 0,
    cancelled && scheduled ? 1 : 0,
    f.returnedAt === null ? 0 : 1,
    f.status === 'unassigned' ? 1 : 0,
  ]
}

const keyOf = (f: ReferralFacts): (string | null)[] => [
  f.sentAt.slice(0, 7),
  ...ROLLUP_KEY_FIELDS.map((k) => f[k] as string | null),
]

/** Fills the (empty) rollup from every facts row: the rebuild's last statement, and migration 6's. */
export const rollupFillSql = (facts: string, rollup: string): string => `
INSERT INTO ${rollup} (${[...ROLLUP_KEY_COLUMNS, ...ROLLUP_COUNTS.map(([c]) => c)].join(', ')})
SELECT substr(sent_at, 1, 7), ${ROLLUP_KEY_COLUMNS.slice(1).join(', ')},
       ${ROLLUP_COUNTS.map(([c, sql]) => `sum(${sql})::${ROLLUP_COUNTS.find(([x]) => x === c)?.[2]}`).join(', ')}
FROM ${facts}
GROUP BY ${ROLLUP_KEY_COLUMNS.map((_, i) => i + 1).join(', ')}`

/**
 * Adds to the rollup what a batch changed: for each referral, its row before the batch (null if
 * new) counted −1× and its row after counted +1×, summed per rollup key, then one upsert. A key
 * whose counts fall to 0 keeps a row with n = 0, which the reports skip.
 */
export const applyRollupDelta = async (
  client: pg.PoolClient,
  rollup: string,
  changes: readonly { readonly before: ReferralFacts | null; readonly after: ReferralFacts }[],
): Promise<void> => {
  const sums = new Map<string, { key: (string | null)[]; counts: number[] }>()
  const add = (f: ReferralFacts, sign: number) => {
    const key = keyOf(f)
    const id = JSON.stringify(key)
    let entry = sums.get(id)
    if (entry === undefined) {
      entry = { key, counts: ROLLUP_COUNTS.map(() => 0) }
      sums.set(id, entry)
    }
    const counts = countsOf(f)
    for (let i = 0; i < counts.length; i++)
      entry.counts[i] = (entry.counts[i] as number) + sign * (counts[i] as number)
  }
  for (const { before, after } of changes) {
    if (before !== null) add(before, -1)
    add(after, 1)
  }
  const entries = [...sums.values()].filter((e) => e.counts.some((c) => c !== 0))
  if (entries.length === 0) return
  const params = [
    ...ROLLUP_KEY_COLUMNS.map((_, i) => entries.map((e) => e.key[i] ?? null)),
    ...ROLLUP_COUNTS.map((_, i) => entries.map((e) => e.counts[i])),
  ]
  const types = [...ROLLUP_KEY_COLUMNS.map(() => 'text'), ...ROLLUP_COUNTS.map(([, , t]) => t)]
  const columns = [...ROLLUP_KEY_COLUMNS, ...ROLLUP_COUNTS.map(([c]) => c)]
  await client.query(
    `INSERT INTO ${rollup} AS r (${columns.join(', ')})
     SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})
     ON CONFLICT (${ROLLUP_KEY_COLUMNS.join(', ')})
     DO UPDATE SET ${ROLLUP_COUNTS.map(([c]) => `${c} = r.${c} + EXCLUDED.${c}`).join(', ')}`,
    params,
  )
}
