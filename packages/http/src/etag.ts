import { type ExpectedVersion, expected } from '@referrals/core'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { httpProblem, ProblemError } from './problem.js'

/**
 * Weak ETags from stream versions: `W/"<version>"`. A resource's representation changes exactly
 * when its stream gets a new event, so the version is a cheap validator. `If-Match` accepts the
 * weak or the strong spelling of the same version (RFC 9110 asks for strong comparison, which weak
 * tags never pass; the version is what matters here).
 */
export const weakEtag = (version: number): string => `W/"${version}"`

export const setEtag = (reply: FastifyReply, version: number): FastifyReply =>
  reply.header('etag', weakEtag(version))

export type IfMatch =
  | { readonly kind: 'absent' }
  | { readonly kind: 'any' }
  | { readonly kind: 'versions'; readonly versions: readonly number[] }
  | { readonly kind: 'invalid' }

const ENTITY_TAG = /^(?:W\/)?"(\d{1,15})"$/

export const parseIfMatch = (header: string | readonly string[] | undefined): IfMatch => {
  if (header === undefined) return { kind: 'absent' }
  const raw = (typeof header === 'string' ? header : header.join(',')).trim()
  if (raw === '*') return { kind: 'any' }
  const versions: number[] = []
  for (const part of raw.split(',')) {
    const match = ENTITY_TAG.exec(part.trim())
    if (match?.[1] === undefined) return { kind: 'invalid' }
    versions.push(Number(match[1]))
  }
  return versions.length === 0 ? { kind: 'invalid' } : { kind: 'versions', versions }
}

export interface IfMatchOptions {
  /** Answer 428 when the client sends no `If-Match` (default: unconditional). */
  readonly required?: boolean
}

/**
 * The expected version for a mutation of a resource the handler read at `currentVersion`:
 * throws a 412 problem when the client's `If-Match` names another version (or `*` on a missing
 * resource), 428 when it is required but absent, 400 when malformed. The store enforces the
 * returned expectation atomically, and a conflict there while `If-Match` was sent also maps to 412.
 */
export const expectedVersionFor = (
  request: FastifyRequest,
  currentVersion: number,
  options: IfMatchOptions = {},
): ExpectedVersion => {
  const ifMatch = parseIfMatch(request.headers['if-match'])
  switch (ifMatch.kind) {
    case 'absent':
      if (options.required === true) {
        throw new ProblemError(
          httpProblem('precondition_required', 'Send If-Match with the ETag of the resource you modify.'),
        )
      }
      return expected.exact(currentVersion)
    case 'invalid':
      throw new ProblemError(httpProblem('bad_request', 'If-Match must be * or a list of entity tags.'))
    case 'any':
      if (currentVersion === 0) throw stale(currentVersion)
      return expected.exact(currentVersion)
    case 'versions':
      if (!ifMatch.versions.includes(currentVersion)) throw stale(currentVersion)
      return expected.exact(currentVersion)
  }
}

const stale = (currentVersion: number) =>
  new ProblemError(
    httpProblem('precondition_failed', 'The resource has changed since the supplied ETag.', {
      details: { currentVersion },
    }),
    { etag: weakEtag(currentVersion) },
  )
