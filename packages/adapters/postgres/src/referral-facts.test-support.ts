// Shared by the fact-report tests (referral-facts-report, -rollup and -durations .int.test.ts):
// random facts rows and report requests, and writing rows straight into a facts table. Test-only
// (excluded from the build: it needs fast-check).
import {
  compareFacts,
  dimensionValue,
  FACT_REPORTS,
  type FactReportOptions,
  factReport,
  type Instant,
  matchesFactsQuery,
  type PracticeId,
  REFERRAL_FACT_FIELDS,
  REPORT_DIMENSIONS,
  type ReferralFacts,
  type ReferralFactsQuery,
  type ReportDimension,
} from '@referrals/core'
import fc from 'fast-check'
import type pg from 'pg'
import { factColumn } from './referral-facts-columns.js'

export const FACT_PRACTICES = ['p-a', 'p-b', 'p-c', 'p-d'] as PracticeId[]

/**
 * Arbitraries over `days` days from `start`: instants (some repeated, as ties in the percentiles,
 * some on the hour, plus the `pinned` ones, e.g. month boundaries), facts rows, a set of up to 40
 * rows and a report request (report, grouping, period, scope, viewer, threshold, filter).
 */
export const factArbitraries = (start: string, days: number, pinned: readonly string[] = []) => {
  const from = Date.parse(start)
  const span = days * 86_400_000
  const instant = fc
    .integer({ min: from, max: from + span })
    .map((ms) => new Date(ms).toISOString() as Instant)
  const onTheHour = fc
    .integer({ min: 0, max: days * 24 })
    .map((h) => new Date(from + h * 3_600_000).toISOString() as Instant)
  const someInstant =
    pinned.length === 0
      ? fc.oneof(instant, onTheHour)
      : fc.oneof(instant, fc.constantFrom(...pinned) as fc.Arbitrary<Instant>, onTheHour)
  const maybe = <A>(a: fc.Arbitrary<A>) => fc.option(a, { nil: null, freq: 2 })
  const small = (values: readonly string[]) => fc.constantFrom(...values)
  const practices = FACT_PRACTICES

  const factsRow = (i: number): fc.Arbitrary<ReferralFacts> =>
    fc.record({
      referralId: fc.constant(`r-${i.toString().padStart(3, '0')}`),
      senderPracticeId: small(practices),
      receivingPracticeId: maybe(small(practices)),
      regionId: small(['north', 'south']),
      specialtyId: small(['cardio', 'derm']),
      categoryId: small(['c1', 'c2']),
      subcategoryId: maybe(small(['s1', 's2'])),
      urgency: small(['routine', 'urgent', 'emergent']),
      route: small(['direct', 'pooled']),
      status: small(['unassigned', 'pending', 'accepted', 'scheduled', 'completed', 'cancelled', 'returned']),
      sentAt: someInstant,
      firstDeliveredAt: maybe(someInstant),
      deliveredAt: maybe(someInstant),
      acceptedAt: maybe(someInstant),
      scheduledAt: maybe(someInstant),
      appointmentAt: maybe(someInstant),
      completedAt: maybe(someInstant),
      cancelledAt: maybe(someInstant),
      returnedAt: maybe(someInstant),
      returnReason: maybe(small(['wrong-specialty', 'other'])),
      unassignedSince: maybe(someInstant),
      deliveryCount: fc.integer({ min: 0, max: 4 }),
      declineCount: fc.integer({ min: 0, max: 3 }),
      expiryCount: fc.integer({ min: 0, max: 3 }),
      noShowCount: fc.integer({ min: 0, max: 2 }),
      channel: maybe(small(['web', 'fax', 'ç-ü'])),
      campaign: maybe(small(['spring', 'Autumn'])),
      location: maybe(small(['loc-1', 'loc-2'])),
      serviceLine: maybe(small(['sl-1'])),
      referringPracticeId: maybe(small(practices)),
      updatedAt: someInstant,
    }) as unknown as fc.Arbitrary<ReferralFacts>

  const rowsArb = fc
    .integer({ min: 0, max: 40 })
    .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => factsRow(i))))

  const requestArb = fc.record({
    report: fc.constantFrom(...FACT_REPORTS),
    groupBy: fc.shuffledSubarray([...REPORT_DIMENSIONS], { maxLength: 3 }),
    from: fc.option(someInstant, { nil: undefined }),
    to: fc.option(someInstant, { nil: undefined }),
    practiceId: fc.option(fc.constantFrom(...practices), { nil: undefined }),
    viewer: fc.subarray([...practices]),
    threshold: fc.integer({ min: 1, max: 6 }),
    now: someInstant,
    // A filter on a dimension with the value of one of the rows (or one no row has).
    filter: fc.option(fc.tuple(fc.constantFrom(...REPORT_DIMENSIONS), fc.nat(), fc.boolean()), {
      nil: undefined,
    }),
  })

  return { someInstant, factsRow, rowsArb, requestArb }
}

/** The `INSERT` of `rows` into `table` (a quoted, schema-qualified name), with its parameters. */
export const factsInsert = (table: string, rows: readonly ReferralFacts[]): [string, unknown[]] => {
  const values: unknown[] = []
  const tuples = rows.map((r) => {
    const first = values.length
    values.push(...REFERRAL_FACT_FIELDS.map((k) => r[k]))
    return `(${REFERRAL_FACT_FIELDS.map((_, i) => `$${first + i + 1}`).join(', ')})`
  })
  return [
    `INSERT INTO ${table} (${REFERRAL_FACT_FIELDS.map(factColumn).join(', ')}) VALUES ${tuples.join(', ')}`,
    values,
  ]
}

/** Replaces every row of `table` by `rows`. */
export const writeFactsRows = async (pool: pg.Pool, table: string, rows: readonly ReferralFacts[]) => {
  await pool.query(`TRUNCATE ${table}`)
  if (rows.length === 0) return
  await pool.query(...factsInsert(table, rows))
}

/** A report request as the arbitraries draw it (a filter is a dimension, a row index, hit or miss). */
export interface FactRequest {
  readonly report: FactReportOptions['report']
  readonly groupBy: FactReportOptions['groupBy']
  readonly from?: Instant | undefined
  readonly to?: Instant | undefined
  readonly practiceId?: PracticeId | undefined
  readonly viewer: readonly PracticeId[]
  readonly threshold: number
  readonly filter?: readonly [ReportDimension, number, boolean] | undefined
}

/**
 * The query and options of request `r` over `rows` (a filter takes the value of one of the rows, or
 * one no row has), and the reference answer: the core's `factReport` over the matching rows.
 */
export const factCase = (rows: readonly ReferralFacts[], r: FactRequest, now: Instant) => {
  const query: ReferralFactsQuery = {
    ...(r.from === undefined ? {} : { sentFrom: r.from }),
    ...(r.to === undefined ? {} : { sentTo: r.to }),
    ...(r.practiceId === undefined ? {} : { practiceId: r.practiceId }),
  }
  const [d, index, hit] = r.filter ?? []
  const filterRow = rows.length === 0 ? undefined : rows[(index ?? 0) % rows.length]
  const filters =
    d === undefined
      ? {}
      : { [d]: hit && filterRow !== undefined ? dimensionValue(filterRow, d) : 'no-such-value' }
  const options: FactReportOptions = {
    report: r.report,
    now,
    groupBy: r.groupBy,
    filters,
    viewer: { practiceIds: r.viewer },
    threshold: r.threshold,
  }
  const reference = factReport(rows.filter((f) => matchesFactsQuery(f, query)).sort(compareFacts), options)
  return { query, options, reference }
}
