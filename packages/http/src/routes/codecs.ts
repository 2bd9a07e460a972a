import {
  InstantFromRfc3339,
  PracticeId,
  ProgramId,
  ReferralId,
  ReferralLinkId,
  ReferralStatus,
  SpecialtyId,
  Urgency,
} from '@referrals/core'
import * as t from 'io-ts'
import { nameSchema, schemaNameOf } from '../openapi/io-ts-schema.js'
import { IntFromQuery } from '../openapi/route.js'

/** Path and query codecs shared by the resource routes. */

/** The `data` codec of a `{ type, data }` command payload codec (readonly/exact wrappers peeled). */
export const dataOf = <P extends t.Mixed>(payload: P): t.Type<t.TypeOf<P>['data'], unknown, unknown> => {
  let codec: t.Mixed = payload
  while (!('props' in codec) && 'type' in codec) codec = (codec as unknown as { type: t.Mixed }).type
  return (codec as unknown as t.InterfaceType<{ data: t.Mixed }>).props.data as t.Type<
    t.TypeOf<P>['data'],
    unknown,
    unknown
  >
}

/**
 * The body of a command route, named `<Command>Request` in the OpenAPI document unless its codec
 * already has a name (the specialist settings are both a body and part of a view).
 */
export const requestBody = <P extends t.Mixed>(payload: P, command: string) => {
  const data = dataOf(payload)
  return schemaNameOf(data) === undefined ? nameSchema(data, `${command}Request`) : data
}

export const PracticeParams = t.type({ practiceId: PracticeId })
export const SpecialtyParams = t.type({ specialtyId: SpecialtyId })
export const ReferralParams = t.type({ referralId: ReferralId })
export const ProgramParams = t.type({ programId: ProgramId })
export const ProgramLinkParams = t.type({ programId: ProgramId, linkId: ReferralLinkId })
export const AsOfQuery = t.partial({ asOf: InstantFromRfc3339 })

/** The body of a command without data (`{}`, or none at all). */
export const EmptyRequest = nameSchema(t.union([t.type({}), t.undefined, t.null]), 'EmptyRequest')

/** Referral lists: filters, search and cursor pagination. */
export const ListQuery = t.intersection([
  t.type({ box: nameSchema(t.keyof({ sent: null, received: null }), 'Box') }),
  t.partial({
    status: ReferralStatus,
    urgency: Urgency,
    specialtyId: SpecialtyId,
    categoryId: t.string,
    patient: t.string,
    sentFrom: InstantFromRfc3339,
    sentTo: InstantFromRfc3339,
    limit: IntFromQuery,
    cursor: t.string,
  }),
])
export type ListQuery = t.TypeOf<typeof ListQuery>
