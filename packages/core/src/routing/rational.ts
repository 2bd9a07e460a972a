/**
 * Exact integer helpers for the router.
 *
 * The hot path keeps every routing quantity as a JavaScript number holding an integer (a *safe*
 * integer: |x| ≤ 2^53 − 1) and compares products of two of them. A product is computed as a double;
 * if both products of a comparison are safe integers they are exact and compared as numbers,
 * otherwise the comparison is redone in BigInt. So no decision ever depends on a rounded value,
 * and BigInt is paid for only past 2^53 (in practice never: see the bounds in `engine.ts`). The
 * stored quantities themselves are checked to stay safe integers (`checkSafe`).
 */

const SAFE = Number.MAX_SAFE_INTEGER

const isSafe = (x: number): boolean => x <= SAFE && x >= -SAFE

/** sign(a·b − c·d) for safe integers a, b, c, d. */
export const cmpProducts = (a: number, b: number, c: number, d: number): number => {
  const l = a * b
  const r = c * d
  if (isSafe(l) && isSafe(r)) return l < r ? -1 : l > r ? 1 : 0
  const L = BigInt(a) * BigInt(b)
  const R = BigInt(c) * BigInt(d)
  return L < R ? -1 : L > R ? 1 : 0
}

/** floor(a·b / d) for safe integers a, b and d > 0 (the result must be a safe integer). */
export const floorProductDiv = (a: number, b: number, d: number): number => {
  const x = a * b
  if (isSafe(x)) {
    if (d === 1) return x
    let q = Math.floor(x / d)
    // x / d is rounded; correct q by the exact remainder (q·d is within d of x: safe).
    const r = x - q * d
    if (r < 0) q--
    else if (r >= d) q++
    return q
  }
  const X = BigInt(a) * BigInt(b)
  const D = BigInt(d)
  const q = X / D
  return checkSafe(Number(X % D !== 0n && X < 0n ? q - 1n : q))
}

/** ceil(a·b / d) for safe integers a, b and d > 0. */
export const ceilProductDiv = (a: number, b: number, d: number): number => -floorProductDiv(-a, b, d)

/** a·b − c·d exactly, for a result that is a safe integer (throws otherwise). */
export const productDifference = (a: number, b: number, c: number, d: number): number => {
  const l = a * b
  const r = c * d
  if (isSafe(l) && isSafe(r) && isSafe(l - r)) return l - r
  return checkSafe(Number(BigInt(a) * BigInt(b) - BigInt(c) * BigInt(d)))
}

/** Throws if `x` is not a safe integer: the engine's stored quantities must stay exact. */
export const checkSafe = (x: number): number => {
  if (!Number.isSafeInteger(x)) {
    throw new RangeError(
      `routing arithmetic left the safe-integer range (${x}); the pool needs a re-placement`,
    )
  }
  return x
}

export const floorDiv = (a: bigint, b: bigint): bigint => {
  const q = a / b
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q
}

export const ceilDiv = (a: bigint, b: bigint): bigint => -floorDiv(-a, b)

const gcd = (a: bigint, b: bigint): bigint => {
  let x = a < 0n ? -a : a
  let y = b < 0n ? -b : b
  while (y !== 0n) {
    const r = x % y
    x = y
    y = r
  }
  return x
}

/** gcd of two safe integers (numbers). */
export const gcdNumber = (a: number, b: number): number => {
  let x = Math.abs(a)
  let y = Math.abs(b)
  while (y !== 0) {
    const r = x % y
    x = y
    y = r
  }
  return x
}

/** `num/den` reduced, as an exact string ("3/2", "-1/3", "4"). */
export const fractionString = (num: bigint, den: bigint): string => {
  if (den === 0n) return 'NaN'
  const sign = den < 0n ? -1n : 1n
  const g = gcd(num, den) || 1n
  const n = (sign * num) / g
  const d = (sign * den) / g
  return d === 1n ? n.toString() : `${n}/${d}`
}

/** Parses an exact fraction string ("3/2", "-4", "0") as [num, den]; null if it is not one. */
export const parseFraction = (s: string): readonly [bigint, bigint] | null => {
  const m = /^(-?\d+)(?:\/(\d+))?$/.exec(s)
  if (m === null) return null
  const den = BigInt(m[2] ?? '1')
  return den === 0n ? null : [BigInt(m[1] as string), den]
}

/** Sign of a/b − c/d for positive denominators b, d. */
export const compareFractions = (a: bigint, b: bigint, c: bigint, d: bigint): number => {
  const l = a * d
  const r = c * b
  return l < r ? -1 : l > r ? 1 : 0
}
