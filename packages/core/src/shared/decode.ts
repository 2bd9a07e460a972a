import { isLeft } from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'

/**
 * One validation problem: where and what was expected — never the offending value, which may be
 * PHI. This is the only reporter the engine uses for io-ts errors.
 */
export interface DecodeProblem {
  readonly path: string
  readonly expected: string
}

export const describeErrors = (errors: t.Errors): readonly DecodeProblem[] => {
  const seen = new Set<string>()
  const problems: DecodeProblem[] = []
  for (const error of errors) {
    const path =
      error.context
        .map((c) => c.key)
        .filter((k) => k !== '')
        .join('.') || '(root)'
    const expected = error.context[error.context.length - 1]?.type.name ?? 'valid value'
    const key = `${path}|${expected}`
    if (!seen.has(key)) {
      seen.add(key)
      problems.push({ path, expected })
    }
  }
  return problems
}

export type Decoded<A> =
  | { readonly ok: true; readonly value: A }
  | { readonly ok: false; readonly problems: readonly DecodeProblem[] }

export const decodeWith = <A, O>(codec: t.Type<A, O, unknown>, input: unknown): Decoded<A> => {
  const result = codec.decode(input)
  return isLeft(result)
    ? { ok: false, problems: describeErrors(result.left) }
    : { ok: true, value: result.right }
}
