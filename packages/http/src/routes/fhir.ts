import {
  type Actor,
  catalogCodingResolver,
  type Engine,
  type FhirReferralExport,
  fhirCapabilityStatement,
  fhirReferralImport,
  type ReferralId,
  referralFhirBundle,
  referralToFhir,
} from '@referrals/core'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { nameSchema } from '../openapi/io-ts-schema.js'
import { route } from '../openapi/route.js'
import { accessOf, phiReadAuditor, scopedPatientId } from './access.js'
import { ReferralParams } from './codecs.js'
import { must, notFound, requestContext } from './failures.js'

export const FHIR_JSON = 'application/fhir+json'

/** Any FHIR R4 resource (the shapes are the R4 JSON schema's; the tests check them against it). */
const FhirResource = nameSchema(
  t.intersection([t.type({ resourceType: t.string }), t.UnknownRecord]),
  'FhirResource',
)

export interface FhirRouteDeps {
  readonly engine: Engine
  readonly version?: string
}

/**
 * FHIR R4 read-only export (issue 16): `GET /fhir/ServiceRequest/{id}`, `GET /fhir/Task/{id}`,
 * `GET /referrals/{id}/fhir` (a `collection` Bundle) and `GET /fhir/metadata`. Access is that of
 * `GET /referrals/{id}`: a referral the caller has no part in is 404; a former recipient gets the
 * export without PHI; every PHI read is audited before anything is sent. The mapping is core's
 * `referralToFhir`; its tables are in the README ("FHIR R4").
 */
export const fhirRoutes: FastifyPluginAsync<FhirRouteDeps> = async (app, { engine, version }) => {
  const auditRead = phiReadAuditor(engine)

  /** Loads the referral, decides the caller's access, audits the read; 404 when there is none. */
  const exportFor = async (
    request: FastifyRequest,
    actor: Actor,
    referralId: ReferralId,
  ): Promise<FhirReferralExport> => {
    const loaded = must(await engine.referrals.load(referralId)())
    const access = accessOf(actor, loaded.state)
    if (access === 'none' || !loaded.state.exists) {
      await auditRead(request, actor, loaded.state, referralId, 'denied')
      throw notFound('Referral')
    }
    if (access === 'phi') await auditRead(request, actor, loaded.state, referralId, 'granted')
    return referralToFhir({ state: loaded.state, events: loaded.events, access })
  }

  // FHIR clients send `application/fhir+json`. A parse failure says nothing about the content.
  app.addContentTypeParser(FHIR_JSON, { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, JSON.parse(String(body)))
    } catch {
      done(Object.assign(new Error('The body is not JSON.'), { statusCode: 400 }), undefined)
    }
  })

  /**
   * 422 OperationOutcome naming the failing FHIR paths (never the values sent). A `subject.reference`
   * that resolves to no Patient (not contained, not an entry of the Bundle: this server holds no
   * Patient resources and fetches none from elsewhere) is issue code `not-found`.
   */
  const outcome = (reply: FastifyReply, paths: readonly string[]) =>
    reply
      .code(422)
      .type(FHIR_JSON)
      .send({
        resourceType: 'OperationOutcome',
        issue: paths.map((path) =>
          path.endsWith('subject.reference')
            ? {
                severity: 'error',
                code: 'not-found',
                diagnostics:
                  'reference not resolved: give the Patient contained (#id) or as an entry of this transaction Bundle',
                expression: [path.startsWith('Bundle.') ? path : `ServiceRequest.${path}`],
              }
            : {
                severity: 'error',
                code: 'invalid',
                diagnostics: 'missing or invalid',
                expression: [path.startsWith('Bundle.') ? path : `ServiceRequest.${path}`],
              },
        ),
      })

  const baseUrl = (request: FastifyRequest) => `${request.protocol}://${request.host}/fhir`

  route(app, {
    method: 'GET',
    url: '/fhir/metadata',
    operationId: 'getFhirCapabilityStatement',
    tags: ['fhir'],
    summary: 'The FHIR R4 CapabilityStatement: exactly the interactions served',
    description:
      'Lists `read` of ServiceRequest and Task and `create` of ServiceRequest; the referral Bundle (`GET /referrals/{referralId}/fhir`) is not a FHIR interaction and is not listed.',
    produces: FHIR_JSON,
    response: FhirResource,
    handler: async () =>
      fhirCapabilityStatement(engine.clock.now(), { name: 'referral-engine', version: version ?? '0.1.0' }),
  })

  route(app, {
    method: 'GET',
    url: '/fhir/ServiceRequest/:referralId',
    operationId: 'getFhirServiceRequest',
    purposeOfUse: true,
    tags: ['fhir'],
    summary: 'The referral as a FHIR R4 ServiceRequest (access and audit as GET /referrals/{referralId})',
    description:
      'The path takes the referral id. Former recipients get it without PHI (no reason, no performer). Send `X-Purpose-Of-Use` to record why PHI is read.',
    params: ReferralParams,
    produces: FHIR_JSON,
    response: FhirResource,
    handler: async ({ params }, request) =>
      (await exportFor(request, requireActor(request), params.referralId)).serviceRequest,
  })

  route(app, {
    method: 'POST',
    url: '/fhir/ServiceRequest',
    operationId: 'importFhirServiceRequest',
    location: true,
    tags: ['fhir'],
    summary: 'Send a referral given as a FHIR R4 ServiceRequest (Patient contained) or a transaction Bundle',
    description:
      'The shape `GET /fhir/ServiceRequest/{referralId}` exports, with the Patient contained and `subject` `#<its id>`: `identifier` (urn:referrals:referral-id), `requester.identifier` the sending practice, `performer[0].identifier` the specialist (direct) or no performer (choose for me), `code` specialty and category, `locationCode` region, `priority`, `reasonCode[0].text`. Or a `transaction` Bundle with one ServiceRequest entry whose `subject` references a Patient contained in it (`#<id>`) or an entry by `fullUrl` (`urn:uuid:…`, absolute URL) or `Patient/<id>`. Invalid input: 422 OperationOutcome naming the failing FHIRPaths only (`Bundle.entry[i].resource.…` for a Bundle); a subject reference that resolves to no Patient there (another server’s URL, an unknown id) is issue code `not-found` at `….subject.reference`; nothing is stored. Authorization as `POST /referrals`. Answers the ServiceRequest.',
    body: nameSchema(t.unknown, 'FhirServiceRequestImport'),
    produces: FHIR_JSON,
    response: FhirResource,
    handler: async ({ body }, request, reply) => {
      const actor = requireActor(request)
      // SNOMED CT / LOINC codings are read through the catalogs' coding maps.
      const catalogs = must(await engine.catalog.all())
      const imported = fhirReferralImport(body, { codings: catalogCodingResolver(catalogs) })
      if (E.isLeft(imported)) return outcome(reply, imported.left) as never
      const data = imported.right
      const sent = must(
        await engine.referrals.execute(
          data.referralId,
          {
            type: 'SendReferral',
            data: { ...data, patientId: scopedPatientId(data.senderPracticeId, data.patientId) },
          },
          requestContext(request),
        )(),
      )
      if (!sent.state.exists) throw notFound('Referral')
      reply.header('location', `/fhir/ServiceRequest/${data.referralId}`)
      const events = must(await engine.referrals.load(data.referralId)()).events
      return referralToFhir({
        state: sent.state,
        events,
        access: accessOf(actor, sent.state) === 'phi' ? 'phi' : 'limited',
      }).serviceRequest
    },
  })

  route(app, {
    method: 'GET',
    url: '/fhir/Task/:referralId',
    operationId: 'getFhirTask',
    purposeOfUse: true,
    tags: ['fhir'],
    summary: 'The referral workflow as a FHIR R4 Task (status and businessStatus per the README table)',
    description:
      'The path takes the referral id. Former recipients get it without the current owner. Send `X-Purpose-Of-Use` to record why PHI is read.',
    params: ReferralParams,
    produces: FHIR_JSON,
    response: FhirResource,
    handler: async ({ params }, request) =>
      (await exportFor(request, requireActor(request), params.referralId)).task,
  })

  route(app, {
    method: 'GET',
    url: '/referrals/:referralId/fhir',
    operationId: 'getReferralFhirBundle',
    purposeOfUse: true,
    tags: ['fhir'],
    summary:
      'The referral as a FHIR R4 collection Bundle (ServiceRequest, Task, Patient, practices, documents, messages, appointment)',
    description:
      'Access and audit as `GET /referrals/{referralId}`. A forgotten patient is exported without identity (Patient with `meta.security` REDACTED); former recipients get no PHI, documents, messages, appointment or delivery Tasks. Re-routes appear as a Task per delivery (`partOf` the referral Task), redirects as revoked ServiceRequests that the current one `replaces`.',
    params: ReferralParams,
    produces: FHIR_JSON,
    response: FhirResource,
    handler: async ({ params }, request) =>
      referralFhirBundle(
        await exportFor(request, requireActor(request), params.referralId),
        baseUrl(request),
        engine.clock.now(),
      ),
  })
}
