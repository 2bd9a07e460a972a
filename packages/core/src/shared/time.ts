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

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

const rfc3339Millis = (s: string): number | undefined => {
  const m = RFC3339.exec(s)
  if (m === null) return undefined
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3))
  const offsetHours = Number(m[10] ?? 0)
  const offsetMinutes = Number(m[11] ?? 0)
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, ms)
  // 31 April would roll over into May; RFC 3339 refuses it.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day)
    return undefined
  const sign = m[9] === '-' ? -1 : 1
  const utc = date.getTime() - sign * (offsetHours * 60 + offsetMinutes) * 60_000
  // An offset can move year 0000 or 9999 out of what an `Instant` writes (four digits).
  return Instant.is(new Date(utc).toISOString()) ? utc : undefined
}

/**
 * Any RFC 3339 date-time (`2026-12-06T12:47:50Z`, `2026-12-06T13:47:50.1+01:00`: an offset or `Z`,
 * any fraction length), decoded to the `Instant` it denotes (UTC, milliseconds; finer digits are
 * truncated). For input from clients, such as query parameters; stored events keep the strict
 * `Instant`. A leap second (`:60`) cannot be represented and is refused.
 */
export const InstantFromRfc3339 = new t.Type<Instant, string, unknown>(
  'RFC 3339 date-time',
  Instant.is,
  (input, context) => {
    const millis = typeof input === 'string' ? rfc3339Millis(input) : undefined
    return millis === undefined ? t.failure(input, context) : t.success(instantFromMillis(millis))
  },
  (instant) => instant,
)

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
