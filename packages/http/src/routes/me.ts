import type { FastifyPluginAsync } from 'fastify'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { nameSchema } from '../openapi/io-ts-schema.js'
import { route } from '../openapi/route.js'
import { forbidden } from './failures.js'

/** `GET /me`: who the bearer token belongs to. */
export const meRoutes: FastifyPluginAsync = async (app) => {
  route(app, {
    method: 'GET',
    url: '/me',
    operationId: 'getMe',
    description:
      'Who the bearer token belongs to: the user id, its platform roles (admin, auditor) and the practices it is a member of, with its role in each.',
    tags: ['account'],
    summary: 'The authenticated user: platform roles and practice memberships',
    response: nameSchema(
      t.type({
        userId: t.string,
        platformRoles: t.array(t.string),
        memberships: t.array(t.type({ practiceId: t.string, role: t.string })),
      }),
      'Me',
    ),
    handler: async (_input, request) => {
      const actor = requireActor(request)
      if (actor.kind !== 'user') throw forbidden()
      return {
        userId: actor.userId,
        platformRoles: [...actor.platformRoles],
        memberships: actor.memberships.map((m) => ({ practiceId: m.practiceId, role: m.role })),
      }
    },
  })
}
