import { type CommandFailure, type CorrelationId, isDomainError, unsafeId } from '@referrals/core'
import type { FastifyRequest } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import { requireActor } from '../auth.js'
import { parseIfMatch } from '../etag.js'
import { httpProblem, ProblemError, toProblemError } from '../problem.js'

/** The actor and correlation id a command is issued with. */
export const requestContext = (request: FastifyRequest) => ({
  actor: requireActor(request),
  correlationId: unsafeId<CorrelationId>(String(request.id)),
})

/** The version a client pinned with `If-Match` (first entity tag), if any. */
export const pinnedVersion = (request: FastifyRequest, current?: number): number | undefined => {
  const ifMatch = parseIfMatch(request.headers['if-match'])
  if (ifMatch.kind === 'invalid')
    throw new ProblemError(httpProblem('bad_request', 'If-Match must be * or a list of entity tags.'))
  if (ifMatch.kind !== 'versions') return undefined
  // Any listed tag may match (RFC 9110): pin the current version when the client listed it.
  return current !== undefined && ifMatch.versions.includes(current) ? current : ifMatch.versions[0]
}

/** Turns an engine failure into the problem the client sees (412 when its If-Match is stale). */
export const fail = (error: CommandFailure, pinned: number | undefined): never => {
  if (!isDomainError(error) && error._tag === 'WrongExpectedVersion' && pinned !== undefined) {
    throw new ProblemError(
      httpProblem('precondition_failed', 'The resource changed since the version in If-Match.', {
        details: { currentVersion: error.actual },
      }),
    )
  }
  throw toProblemError(error)
}

/** The success value, or the failure thrown as a problem. */
export const must = <A>(r: E.Either<CommandFailure, A>, pinned?: number): A =>
  E.isLeft(r) ? fail(r.left, pinned) : r.right

export const notFound = (what: string) => new ProblemError(httpProblem('not_found', `${what} not found.`))
export const forbidden = () => new ProblemError(httpProblem('forbidden', 'You may not do this.'))
