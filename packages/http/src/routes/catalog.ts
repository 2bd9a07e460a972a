import {
  ApproveCategoryPayload,
  type CatalogCommandPayload as CatalogCommand,
  CatalogCommandPayload,
  DefineSpecialtyPayload,
  type Engine,
  MapCodingPayload,
  ProposeCategoryPayload,
  RenameCategoryPayload,
  RetireCategoryPayload,
  type SpecialtyId,
  UnmapCodingPayload,
} from '@referrals/core'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { setEtag } from '../etag.js'
import { operationIdOf, route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'
import { requestBody, SpecialtyParams } from './codecs.js'
import { must, notFound, pinnedVersion, requestContext } from './failures.js'
import { CatalogView, catalogView } from './views.js'

/** `/specialties`: the catalog of specialties and their categories. */
export const catalogRoutes: FastifyPluginAsync<{ readonly engine: Engine }> = async (app, { engine }) => {
  const catalogResponse = async (specialtyId: SpecialtyId, reply: FastifyReply) => {
    const loaded = must(await engine.catalog.load(specialtyId)())
    if (!loaded.state.exists) throw notFound('Specialty')
    setEtag(reply, loaded.version)
    return catalogView(loaded.state, loaded.version)
  }

  route(app, {
    method: 'POST',
    url: '/specialties',
    operationId: 'defineSpecialty',
    location: true,
    etag: true,
    tags: ['catalog'],
    summary: 'Define a specialty (platform admin)',
    body: requestBody(DefineSpecialtyPayload, 'DefineSpecialty'),
    response: CatalogView,
    handler: async ({ body }, request, reply) => {
      must(
        await engine.catalog.execute(
          body.specialtyId,
          { type: 'DefineSpecialty', data: body },
          requestContext(request),
        )(),
      )
      reply.header('location', `/specialties/${body.specialtyId}`)
      return catalogResponse(body.specialtyId, reply)
    },
  })

  route(app, {
    method: 'GET',
    url: '/specialties/:specialtyId',
    operationId: 'getSpecialty',
    etag: true,
    description:
      'Any signed-in user may read the catalog: the specialty, its categories and subcategories, and whether each is proposed, approved or retired.',
    tags: ['catalog'],
    summary: 'A specialty and its categories and subcategories with their status',
    params: SpecialtyParams,
    response: CatalogView,
    handler: async ({ params }, _request, reply) => catalogResponse(params.specialtyId, reply),
  })

  const catalogActions: readonly [string, CatalogCommand['type'], t.Mixed, string][] = [
    [
      'categories',
      'ProposeCategory',
      requestBody(ProposeCategoryPayload, 'ProposeCategory'),
      'Propose a category or subcategory',
    ],
    [
      'categories/approve',
      'ApproveCategory',
      requestBody(ApproveCategoryPayload, 'ApproveCategory'),
      'Approve a proposed category (admin)',
    ],
    [
      'categories/rename',
      'RenameCategory',
      requestBody(RenameCategoryPayload, 'RenameCategory'),
      'Rename a category (admin)',
    ],
    [
      'categories/retire',
      'RetireCategory',
      requestBody(RetireCategoryPayload, 'RetireCategory'),
      'Retire a category (admin); history is kept',
    ],
    [
      'codings/map',
      'MapCoding',
      requestBody(MapCodingPayload, 'MapCoding'),
      'Map a SNOMED CT or LOINC code to a category (admin); FHIR import reads codings with this table',
    ],
    [
      'codings/unmap',
      'UnmapCoding',
      requestBody(UnmapCodingPayload, 'UnmapCoding'),
      'Remove a code from the coding map (admin)',
    ],
  ]
  for (const [path, type, body, summary] of catalogActions) {
    route(app, {
      method: 'POST',
      url: `/specialties/:specialtyId/${path}`,
      operationId: operationIdOf(type),
      ifMatch: true,
      etag: true,
      description: `${summary}: the \`${type}\` command. Answers the specialty as it is afterwards.`,
      tags: ['catalog'],
      summary,
      params: SpecialtyParams,
      body,
      response: CatalogView,
      successStatus: 200,
      handler: async ({ params, body: data }, request, reply) => {
        const payload = CatalogCommandPayload.decode({ type, data })
        if (E.isLeft(payload)) throw new ProblemError(httpProblem('bad_request'))
        const pinned = pinnedVersion(request)
        must(
          await engine.catalog.execute(
            params.specialtyId,
            payload.right,
            requestContext(request),
            pinned === undefined ? {} : { expectedVersion: pinned },
          )(),
          pinned,
        )
        return catalogResponse(params.specialtyId, reply)
      },
    })
  }
}
