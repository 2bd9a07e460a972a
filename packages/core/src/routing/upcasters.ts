import type { Upcaster } from '../envelope/upcast.js'
import { parseFraction } from './rational.js'

/** Schema version of each pool event type as written today (older versions are upcast on read). */
export const POOL_EVENT_SCHEMA_VERSION = { ReferralRouted: 2 } as const
export const poolEventSchemaVersion = (type: string): number =>
  type === 'ReferralRouted' ? POOL_EVENT_SCHEMA_VERSION.ReferralRouted : 1

const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x)

const toSafe = (x: bigint): number | null => {
  const n = Number(x)
  return Number.isSafeInteger(n) && BigInt(n) === x ? n : null
}

/**
 * `ReferralRouted` v1 → v2. Version 1 recorded every virtual-time value as an exact fraction
 * string: `virtualTime` ("V"), and per candidate `virtualStart` (p/w), `virtualFinish` ((p+W)/w) and
 * `lag` ((V·w − p)/W), all reduced. Version 2 records the integers they are made of: `virtualTime`
 * as {num, den}, `totalWeight` W and per candidate `startUnits` p, from which the strings are
 * formatted again when explaining. The conversion is exact: p = start·w (the reduced denominator
 * divides w), W = finish·w − p. Data that does not have the v1 shape is passed through untouched:
 * the event codec then rejects it with a typed error.
 */
export const referralRoutedV1ToV2: Upcaster = {
  type: 'ReferralRouted',
  fromVersion: 1,
  upcast: (data) => {
    if (!isRecord(data) || typeof data.virtualTime !== 'string' || !Array.isArray(data.candidates))
      return data
    const v = parseFraction(data.virtualTime)
    if (v === null) return data
    let totalWeight: bigint | null = null
    const candidates: unknown[] = []
    for (const c of data.candidates) {
      if (!isRecord(c) || typeof c.fteMilli !== 'number' || !Number.isSafeInteger(c.fteMilli)) return data
      if (typeof c.virtualStart !== 'string' || typeof c.virtualFinish !== 'string') return data
      const s = parseFraction(c.virtualStart)
      const f = parseFraction(c.virtualFinish)
      const w = BigInt(c.fteMilli)
      if (s === null || f === null || w <= 0n) return data
      if (w % s[1] !== 0n || w % f[1] !== 0n) return data
      const p = s[0] * (w / s[1])
      const W = f[0] * (w / f[1]) - p
      if (totalWeight === null) totalWeight = W
      if (W !== totalWeight) return data
      const startUnits = toSafe(p)
      if (startUnits === null) return data
      candidates.push({
        practiceId: c.practiceId,
        count: c.count,
        fteMilli: c.fteMilli,
        eligible: c.eligible,
        startUnits,
      })
    }
    const num = toSafe(v[0])
    const den = toSafe(v[1])
    const W = totalWeight === null ? null : toSafe(totalWeight)
    if (num === null || den === null || W === null || W <= 0) return data
    const { virtualTime: _v, candidates: _c, candidateCount, exclusions, policy, ...head } = data
    return {
      ...head,
      virtualTime: { num, den },
      totalWeight: W,
      candidateCount,
      candidates,
      exclusions,
      policy,
    }
  },
}

export const poolUpcasters: readonly Upcaster[] = [referralRoutedV1ToV2]
