/**
 * Domain errors are plain values: a stable machine-readable `code` (the HTTP layer maps codes to
 * statuses and problem types in one place) and a human message. Messages and details never
 * contain patient data: they name fields and rules, not values.
 */
export interface DomainError {
  readonly _tag: 'DomainError'
  readonly code: string
  readonly message: string
  readonly details?: Readonly<Record<string, string | number | boolean>>
}

export const domainError = (
  code: string,
  message: string,
  details?: Readonly<Record<string, string | number | boolean>>,
): DomainError =>
  details === undefined
    ? { _tag: 'DomainError', code, message }
    : { _tag: 'DomainError', code, message, details }

export const isDomainError = (u: unknown): u is DomainError =>
  typeof u === 'object' && u !== null && (u as { _tag?: unknown })._tag === 'DomainError'

/** Compile-time exhaustiveness check for `switch` statements over unions. */
export const absurd = (value: never): never => {
  throw new Error(`unhandled case: ${JSON.stringify((value as { type?: unknown })?.type ?? typeof value)}`)
}
