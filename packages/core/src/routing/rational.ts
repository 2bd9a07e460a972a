/**
 * Exact integer helpers for the router. Every routing comparison is a comparison of BigInt
 * products, so no floating-point rounding can change a decision.
 */

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

/** `num/den` reduced, as an exact string ("3/2", "-1/3", "4"). */
export const fractionString = (num: bigint, den: bigint): string => {
  if (den === 0n) return 'NaN'
  const sign = den < 0n ? -1n : 1n
  const g = gcd(num, den) || 1n
  const n = (sign * num) / g
  const d = (sign * den) / g
  return d === 1n ? n.toString() : `${n}/${d}`
}

/** Sign of a/b − c/d for positive denominators b, d. */
export const compareFractions = (a: bigint, b: bigint, c: bigint, d: bigint): number => {
  const l = a * d
  const r = c * b
  return l < r ? -1 : l > r ? 1 : 0
}
