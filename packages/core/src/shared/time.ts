import * as t from 'io-ts'

/** An instant as an ISO-8601 UTC timestamp with millisecond precision: `2026-01-31T12:00:00.000Z`. */
const INSTANT_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

export const Instant = t.brand(
  t.string,
  (s): s is t.Branded<string, { readonly Instant: symbol }> =>
    INSTANT_PATTERN.test(s) && !Number.isNaN(new Date(s).getTime()) && new Date(s).toISOString() === s,
  'Instant',
)
export type Instant = t.TypeOf<typeof Instant>

export const instantFromMillis = (ms: number): Instant => new Date(ms).toISOString() as Instant
export const millisOf = (instant: Instant): number => new Date(instant).getTime()
export const addMillis = (instant: Instant, ms: number): Instant => instantFromMillis(millisOf(instant) + ms)

export const HOUR_MS = 3_600_000

/** Clock port: the only way the engine learns the time. */
export interface Clock {
  readonly now: () => Instant
}

/** A clock that only moves when told to; for tests, simulations and replays. */
export const manualClock = (start: Instant) => {
  let current = millisOf(start)
  return {
    now: (): Instant => instantFromMillis(current),
    advance: (ms: number): void => {
      current += ms
    },
    set: (instant: Instant): void => {
      current = millisOf(instant)
    },
  }
}
export type ManualClock = ReturnType<typeof manualClock>
