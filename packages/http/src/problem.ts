import type { DecodeProblem, DomainError, StoreError } from '@referrals/core'
import { absurd, isDomainError } from '@referrals/core'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

/**
 * RFC 9457 problem details. Every error the API answers is one of these, with content type
 * `application/problem+json`. `type` is a stable URI per error code; `detail` comes from domain
 * errors (which never carry PHI by contract) or from the fixed texts below — never from raw
 * exceptions, parser messages or request input.
 */
export interface Problem {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly code: string
  readonly detail?: string
  readonly correlationId?: string
  /** Decode failures: where and what was expected, never the offending value. */
  readonly errors?: readonly DecodeProblem[]
  readonly details?: Readonly<Record<string, string | number | boolean>>
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'
export const PROBLEM_TYPE_BASE = 'https://referrals.dev/problems/'
export const problemType = (code: string): string => `${PROBLEM_TYPE_BASE}${code}`

/** Stable titles for the problems the HTTP layer itself produces. */
const httpProblems = {
  bad_request: [400, 'Bad request'],
  validation_failed: [400, 'Request does not match the schema'],
  unauthorized: [401, 'Authentication required'],
  forbidden: [403, 'Forbidden'],
  not_found: [404, 'Not found'],
  method_not_allowed: [405, 'Method not allowed'],
  not_acceptable: [406, 'Not acceptable'],
  conflict: [409, 'Conflict'],
  'idempotency.in_flight': [409, 'A request with this idempotency key is still being processed'],
  'store.wrong_expected_version': [409, 'The resource was changed concurrently'],
  'store.idempotency_mismatch': [409, 'Conflicting retry of an earlier request'],
  precondition_failed: [412, 'Precondition failed'],
  payload_too_large: [413, 'Payload too large'],
  unsupported_media_type: [415, 'Unsupported media type'],
  'idempotency.key_reused': [422, 'Idempotency key reused with a different request'],
  precondition_required: [428, 'Precondition required'],
  rate_limited: [429, 'Too many requests'],
  internal: [500, 'Internal server error'],
  'store.unavailable': [503, 'Service unavailable'],
  service_unavailable: [503, 'Service unavailable'],
} as const satisfies Record<string, readonly [number, string]>

export type HttpProblemCode = keyof typeof httpProblems

/**
 * What a domain error means for a client: the resource does not exist (404), the caller may not do
 * this (403), it already exists (409), or a rule of the domain refuses it (422).
 */
export type DomainErrorKind = 'not_found' | 'forbidden' | 'conflict' | 'rule_violated'

/**
 * Every code the engine reports (`<area>.<reason>`), and its kind: the one mapping from domain
 * error codes to statuses. A `Record` over the union, so adding a code to the union without a kind
 * (or a kind without the code) does not compile; `domain-errors.test.ts` checks that every code the
 * core's sources report is listed.
 */
const DOMAIN_ERROR_KINDS = {
  'catalog.already_exists': 'conflict',
  'catalog.category_exists': 'rule_violated',
  'catalog.category_not_found': 'rule_violated',
  'catalog.category_retired': 'rule_violated',
  'catalog.duplicate_name': 'rule_violated',
  'catalog.forbidden': 'forbidden',
  'catalog.invalid_code': 'rule_violated',
  'catalog.invalid_name': 'rule_violated',
  'catalog.not_found': 'not_found',
  'catalog.parent_not_approved': 'rule_violated',
  'catalog.parent_not_found': 'rule_violated',
  'catalog.parent_retired': 'rule_violated',
  'catalog.too_deep': 'rule_violated',
  'event.undecodable': 'rule_violated',
  'event.unknown_schema_version': 'rule_violated',
  'intake.already_opened': 'conflict',
  'intake.already_submitted': 'rule_violated',
  'intake.consent_outdated': 'rule_violated',
  'intake.context_mismatch': 'rule_violated',
  'intake.forbidden': 'forbidden',
  'intake.invalid': 'rule_violated',
  'intake.invalid_transition': 'rule_violated',
  'intake.link_not_found': 'not_found',
  'intake.link_paused': 'rule_violated',
  'intake.link_retired': 'rule_violated',
  'intake.no_consent_published': 'rule_violated',
  'intake.not_opened': 'rule_violated',
  'patient.forgotten': 'rule_violated',
  'practice.already_exists': 'conflict',
  'practice.already_member': 'rule_violated',
  'practice.forbidden': 'forbidden',
  'practice.invalid_name': 'rule_violated',
  'practice.invalid_reason': 'rule_violated',
  'practice.invalid_settings': 'rule_violated',
  'practice.last_owner': 'rule_violated',
  'practice.not_configured': 'rule_violated',
  'practice.not_found': 'not_found',
  'practice.not_member': 'rule_violated',
  'practice.not_specialist': 'rule_violated',
  'program.already_exists': 'conflict',
  'program.context_mismatch': 'rule_violated',
  'program.conversion_not_found': 'rule_violated',
  'program.forbidden': 'forbidden',
  'program.invalid_guidance': 'rule_violated',
  'program.invalid_rule': 'rule_violated',
  'program.link_code_taken': 'conflict',
  'program.link_exists': 'conflict',
  'program.link_not_found': 'not_found',
  'program.link_retired': 'rule_violated',
  'program.not_found': 'not_found',
  'program.rule_exists': 'conflict',
  'program.rule_not_found': 'rule_violated',
  'referral.already_exists': 'conflict',
  'referral.appointment_not_due': 'rule_violated',
  'referral.category_not_approved': 'rule_violated',
  'referral.category_not_found': 'rule_violated',
  'referral.category_specialty_mismatch': 'rule_violated',
  'referral.context_missing': 'rule_violated',
  'referral.duplicate_attachment': 'rule_violated',
  'referral.duplicate_message': 'rule_violated',
  'referral.forbidden': 'forbidden',
  'referral.invalid_transition': 'rule_violated',
  'referral.no_show_already_recorded': 'rule_violated',
  'referral.not_found': 'not_found',
  'referral.recipient_declined': 'rule_violated',
  'referral.recipient_not_eligible': 'rule_violated',
  'referral.unchanged': 'rule_violated',
  'referral.unknown_command': 'rule_violated',
  'routing.invalid_command': 'rule_violated',
  'routing.not_assigned': 'rule_violated',
  'routing.referral_already_assigned': 'rule_violated',
} as const satisfies Record<string, DomainErrorKind>

/** The codes of the engine's domain errors. */
export type DomainErrorCode = keyof typeof DOMAIN_ERROR_KINDS
export const DOMAIN_ERROR_CODES = Object.keys(DOMAIN_ERROR_KINDS) as readonly DomainErrorCode[]

export const isDomainErrorCode = (code: string): code is DomainErrorCode =>
  Object.hasOwn(DOMAIN_ERROR_KINDS, code)

/** A code the table does not know (an embedder's own rule) is a rule violation. */
export const kindOfDomainCode = (code: string): DomainErrorKind =>
  isDomainErrorCode(code) ? DOMAIN_ERROR_KINDS[code] : 'rule_violated'

const statusAndTitleOfKind = (kind: DomainErrorKind): readonly [number, string] => {
  switch (kind) {
    case 'not_found':
      return [404, 'Not found']
    case 'forbidden':
      return [403, 'Forbidden']
    case 'conflict':
      return [409, 'Conflict']
    case 'rule_violated':
      return [422, 'Domain rule violated']
    default:
      return absurd(kind)
  }
}

export const statusOfDomainCode = (code: string): number => statusAndTitleOfKind(kindOfDomainCode(code))[0]

/** Problem for one of the HTTP layer's own codes. */
export const httpProblem = (
  code: HttpProblemCode,
  detail?: string,
  extensions?: Pick<Problem, 'errors' | 'details'>,
): Problem => {
  const [status, title] = httpProblems[code]
  return {
    type: problemType(code),
    title,
    status,
    code,
    ...(detail === undefined ? {} : { detail }),
    ...extensions,
  }
}

export const problemFromDomainError = (error: DomainError): Problem => {
  const [status, title] = statusAndTitleOfKind(kindOfDomainCode(error.code))
  return {
    type: problemType(error.code),
    title,
    status,
    code: error.code,
    detail: error.message,
    ...(error.details === undefined ? {} : { details: error.details }),
  }
}

export const problemFromStoreError = (error: StoreError): Problem => {
  switch (error._tag) {
    case 'WrongExpectedVersion':
      return httpProblem(
        'store.wrong_expected_version',
        'The resource was changed by another request; reload it and retry.',
        { details: { currentVersion: error.actual } },
      )
    case 'IdempotencyMismatch':
      return httpProblem('store.idempotency_mismatch', 'Part of this request was already applied.')
    case 'StoreUnavailable':
      return httpProblem('store.unavailable', 'The event store is unavailable; retry later.')
    case 'InvalidAppend':
      return httpProblem('internal')
  }
}

const storeErrorTags = new Set([
  'WrongExpectedVersion',
  'IdempotencyMismatch',
  'InvalidAppend',
  'StoreUnavailable',
])

export const isStoreError = (u: unknown): u is StoreError =>
  typeof u === 'object' &&
  u !== null &&
  storeErrorTags.has(String((u as { _tag?: unknown })._tag)) &&
  typeof (u as { message?: unknown }).message === 'string'

/**
 * An exception that carries a ready problem (plus response headers such as `WWW-Authenticate`).
 * Handlers and hooks throw it; the error handler answers it as is.
 */
export class ProblemError extends Error {
  readonly problem: Problem
  readonly headers: Readonly<Record<string, string>>
  constructor(problem: Problem, headers: Readonly<Record<string, string>> = {}) {
    super(problem.title)
    this.name = 'ProblemError'
    this.problem = problem
    this.headers = headers
  }
}

export const isProblemError = (u: unknown): u is ProblemError => u instanceof ProblemError

/** Throwable form of a domain or store error, for handlers working with `Either`. */
export const toProblemError = (error: DomainError | StoreError): ProblemError =>
  new ProblemError(isDomainError(error) ? problemFromDomainError(error) : problemFromStoreError(error))

export const sendProblem = (reply: FastifyReply, problem: Problem): FastifyReply => {
  const body: Problem = { ...problem, correlationId: String(reply.request.id) }
  if (body.status === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', '5')
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body)
}

/** Fastify's own errors (body parser, limits, routing) by code, then by status. */
const fastifyErrorProblem = (error: FastifyError): Problem => {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return httpProblem('payload_too_large', 'The request body exceeds the size limit.')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return httpProblem('unsupported_media_type', 'The request content type is not supported.')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return httpProblem('bad_request', 'The request body is empty.')
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return httpProblem('bad_request', 'The request body is not valid JSON.')
    default:
      break
  }
  // Parser messages can quote the input (e.g. JSON syntax errors), so only fixed texts are used.
  switch (error.statusCode) {
    case 400:
      return httpProblem(
        'bad_request',
        error instanceof SyntaxError ? 'The request body is not valid JSON.' : 'Malformed request.',
      )
    case 401:
      return httpProblem('unauthorized')
    case 403:
      return httpProblem('forbidden')
    case 404:
      return httpProblem('not_found')
    case 405:
      return httpProblem('method_not_allowed')
    case 406:
      return httpProblem('not_acceptable')
    case 413:
      return httpProblem('payload_too_large', 'The request body exceeds the size limit.')
    case 415:
      return httpProblem('unsupported_media_type', 'The request content type is not supported.')
    case 429:
      return httpProblem('rate_limited', 'Rate limit exceeded; retry later.')
    case 503:
      return httpProblem('service_unavailable')
    default:
      return httpProblem('internal', 'Unexpected error; quote the correlation id when reporting it.')
  }
}

/** Maps anything thrown by a handler or hook to a problem. */
export const problemOf = (error: unknown, request?: FastifyRequest): Problem => {
  if (isProblemError(error)) return error.problem
  if (isDomainError(error)) return problemFromDomainError(error)
  if (isStoreError(error)) {
    // A concurrent change detected while honouring `If-Match` is a failed precondition.
    if (error._tag === 'WrongExpectedVersion' && request?.headers['if-match'] !== undefined) {
      return httpProblem('precondition_failed', 'The resource has changed since the supplied ETag.', {
        details: { currentVersion: error.actual },
      })
    }
    return problemFromStoreError(error)
  }
  if (error instanceof Error && typeof (error as FastifyError).statusCode === 'number') {
    return fastifyErrorProblem(error as FastifyError)
  }
  return httpProblem('internal', 'Unexpected error; quote the correlation id when reporting it.')
}

/**
 * Logs only the error's class, code and stack frames — the message line is dropped, since
 * messages from libraries (database drivers, parsers) can contain request values.
 */
export const safeErrorLogFields = (error: unknown): Record<string, unknown> => {
  if (!(error instanceof Error)) return { errorKind: typeof error }
  const frames = (error.stack ?? '')
    .split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .map((line) => line.trim())
  const code = (error as { code?: unknown }).code
  return { errorName: error.name, ...(typeof code === 'string' ? { errorCode: code } : {}), frames }
}

export const problemErrorHandler = (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
  const problem = problemOf(error, request)
  if (isProblemError(error)) reply.headers(error.headers)
  if (problem.status >= 500) {
    request.log.error({ problemCode: problem.code, ...safeErrorLogFields(error) }, 'request failed')
  }
  return sendProblem(reply, problem)
}

export const notFoundHandler = (_request: FastifyRequest, reply: FastifyReply) =>
  sendProblem(reply, httpProblem('not_found', 'No resource at this address.'))
