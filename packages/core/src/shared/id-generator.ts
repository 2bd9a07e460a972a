/** IdGenerator port: the only way the engine makes new identifiers (events, referrals, ...). */
export interface IdGenerator {
  readonly next: () => string
}

/** Deterministic ids `prefix-000001`, `prefix-000002`, …; for tests and simulations. */
export const sequentialIds = (prefix = 'id'): IdGenerator => {
  let n = 0
  return { next: () => `${prefix}-${String(++n).padStart(6, '0')}` }
}
