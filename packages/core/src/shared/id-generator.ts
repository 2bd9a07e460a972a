/** IdGenerator port: the only way the engine makes new identifiers (events, referrals, ...). */
export interface IdGenerator {
  readonly next: () => string
}

/** Deterministic ids `prefix-000001`, `prefix-000002`, …; for tests and simulations. */
export const sequentialIds = (prefix = 'id'): IdGenerator => {
  let n = 0
  return { next: () => `${prefix}-${String(++n).padStart(6, '0')}` }
}

/**
 * Deterministic UUID-shaped ids (`00000000-0000-4000-8000-000000000001`, …): for tests and
 * simulations against stores that require event ids to be UUIDs (EventStoreDB).
 */
export const sequentialUuids = (namespace = 0): IdGenerator => {
  let n = 0
  const ns = namespace.toString(16).padStart(8, '0').slice(-8)
  return { next: () => `${ns}-0000-4000-8000-${(++n).toString(16).padStart(12, '0')}` }
}
