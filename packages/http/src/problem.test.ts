import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { domainError, type StoreError, type StreamId } from '@referrals/core'
import { describe, expect, it } from 'vitest'
import {
  DOMAIN_ERROR_CODES,
  httpProblem,
  isDomainErrorCode,
  isStoreError,
  problemFromDomainError,
  problemFromStoreError,
  problemOf,
  statusOfDomainCode,
} from './problem.js'

describe('domain error mapping', () => {
  it('maps every known code to its status through one table; an unknown code is a rule violation', () => {
    const cases: readonly [string, number][] = [
      ['referral.not_found', 404],
      ['practice.forbidden', 403],
      ['practice.already_exists', 409],
      ['referral.invalid_transition', 422],
      ['referral.category_not_found', 422],
      ['patient.forgotten', 422],
      ['demo.rule', 422],
    ]
    expect(cases.map(([code]) => [code, statusOfDomainCode(code)])).toEqual(cases)
    expect(DOMAIN_ERROR_CODES.every(isDomainErrorCode)).toBe(true)
    expect(isDomainErrorCode('toString')).toBe(false)
  })

  it('lists every domain error code the core reports', async () => {
    // The codes passed to domainError(...) / fail(...) in the core's sources.
    const root = fileURLToPath(new URL('../../core/src', import.meta.url))
    const files = (await readdir(root, { recursive: true })).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('testing'),
    )
    const reported = new Set<string>()
    for (const file of files) {
      const text = await readFile(join(root, file), 'utf8')
      for (const m of text.matchAll(/(?:domainError|fail)\(\s*'([a-z_]+\.[a-z_]+)'/g))
        reported.add(m[1] as string)
    }
    expect(reported.size).toBeGreaterThan(30)
    expect([...reported].filter((code) => !isDomainErrorCode(code))).toEqual([])
  })

  it('builds a problem with a stable type per code, the message as detail and the details', () => {
    expect(
      problemFromDomainError(
        domainError('referral.not_found', 'No referral with this id.', { referralId: 'r-1' }),
      ),
    ).toEqual({
      type: 'https://referrals.dev/problems/referral.not_found',
      title: 'Not found',
      status: 404,
      code: 'referral.not_found',
      detail: 'No referral with this id.',
      details: { referralId: 'r-1' },
    })
  })
})

describe('store error mapping', () => {
  const stream = 'referral-r1' as StreamId
  const errors: readonly StoreError[] = [
    {
      _tag: 'WrongExpectedVersion',
      streamId: stream,
      expected: { kind: 'exact', version: 1 },
      actual: 3,
      message: 'm',
    },
    { _tag: 'IdempotencyMismatch', streamId: stream, message: 'm' },
    { _tag: 'InvalidAppend', message: 'm' },
    { _tag: 'StoreUnavailable', reason: 'timeout', message: 'connect ETIMEDOUT 10.0.0.1' },
  ]

  it('maps tags to 409, 409, 500, 503 without echoing store messages', () => {
    const problems = errors.map(problemFromStoreError)
    expect(problems.map((p) => [p.status, p.code])).toEqual([
      [409, 'store.wrong_expected_version'],
      [409, 'store.idempotency_mismatch'],
      [500, 'internal'],
      [503, 'store.unavailable'],
    ])
    expect(problems[0]?.details).toEqual({ currentVersion: 3 })
    expect(JSON.stringify(problems)).not.toContain('ETIMEDOUT')
    expect(errors.every(isStoreError)).toBe(true)
    expect(isStoreError(domainError('x', 'y'))).toBe(false)
  })

  it('maps a thrown store conflict to 412 when the request carried If-Match', () => {
    const withIfMatch = { headers: { 'if-match': 'W/"1"' } } as unknown as Parameters<typeof problemOf>[1]
    expect(problemOf(errors[0], withIfMatch).status).toBe(412)
    expect(problemOf(errors[0]).status).toBe(409)
  })
})

describe('problemOf', () => {
  it('hides unknown errors and parser messages behind fixed texts', () => {
    const unknown = problemOf(new Error('patient Jane Doe not found'))
    expect(unknown).toEqual(
      httpProblem('internal', 'Unexpected error; quote the correlation id when reporting it.'),
    )
    const parse = Object.assign(new SyntaxError('Unexpected token J in "Jane Doe"'), { statusCode: 400 })
    expect(problemOf(parse)).toEqual(httpProblem('bad_request', 'The request body is not valid JSON.'))
    expect(JSON.stringify(problemOf('a thrown string'))).not.toContain('thrown string')
  })
})
