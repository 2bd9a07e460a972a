import * as E from 'fp-ts/lib/Either.js'
import { CodingSystem, type ExistingCatalog } from '../catalog/index.js'
import { categoryForCoding } from '../catalog/views.js'
import { SendReferralData } from '../referral/codecs.js'
import { FHIR_PRIORITY, FHIR_SYSTEMS, type FhirReferralExport, type FhirResource } from './fhir.js'

/**
 * FHIR R4 import (issue 16): a ServiceRequest with a contained Patient, as `referralToFhir`
 * exports it, read back into `SendReferral` data. Pure. Failures name the FHIR path only, never
 * the value sent (no PHI echo). The patient id is the sender's own local id: an exported scoped
 * id (`<senderPracticeId>:<local>`) has its prefix removed, so export → import → export keeps it.
 */

type Json = Record<string, unknown>
const obj = (u: unknown): Json | null =>
  typeof u === 'object' && u !== null && !Array.isArray(u) ? (u as Json) : null
const arr = (u: unknown): unknown[] => (Array.isArray(u) ? u : [])
const str = (u: unknown): string | null => (typeof u === 'string' ? u : null)

const codeOf = (concepts: unknown, system: string): string[] =>
  arr(concepts).flatMap((c) =>
    arr(obj(c)?.coding).flatMap((k) => {
      const coding = obj(k)
      return coding?.system === system && typeof coding.code === 'string' ? [coding.code] : []
    }),
  )

/** Where a SNOMED CT / LOINC code leads: the specialty and its (sub)category. */
export interface CodedCategory {
  readonly specialtyId: string
  readonly categoryId: string
  readonly parentId: string | null
}

/** The catalogs' coding maps: every live category a (system, code) means (two: ambiguous). */
export type CodingResolver = (system: CodingSystem, code: string) => readonly CodedCategory[]

export const catalogCodingResolver =
  (catalogs: readonly ExistingCatalog[]): CodingResolver =>
  (system, code) =>
    catalogs.flatMap((catalog) => {
      const category = categoryForCoding(catalog, system, code)
      return category === null
        ? []
        : [{ specialtyId: catalog.specialtyId, categoryId: category.categoryId, parentId: category.parentId }]
    })

/** SNOMED CT 3457005 "Patient referral": the export's `ServiceRequest.category`, not a specialty. */
const PATIENT_REFERRAL = 'http://snomed.info/sct|3457005'

/**
 * The SNOMED CT / LOINC codings of `code`, `category` and `performerType` with their FHIR paths, and
 * the paths of codings of systems the import does not know in `code`.
 */
const standardCodings = (sr: Json) => {
  const found: {
    readonly path: string
    readonly system: CodingSystem
    readonly code: string
    readonly display: string | null
  }[] = []
  const unknown: string[] = []
  const scan = (concept: unknown, path: string, strict: boolean) =>
    arr(obj(concept)?.coding).forEach((k, i) => {
      const coding = obj(k)
      const system = str(coding?.system)
      const code = str(coding?.code)
      const at = `${path}.coding[${i}]`
      if (system !== null && code !== null && CodingSystem.is(system)) {
        if (`${system}|${code}` !== PATIENT_REFERRAL)
          found.push({ path: at, system, code, display: str(coding?.display) })
      } else if (strict && system !== FHIR_SYSTEMS.specialty && system !== FHIR_SYSTEMS.category)
        unknown.push(at)
    })
  scan(sr.code, 'code', true)
  arr(sr.category).forEach((c, i) => {
    scan(c, `category[${i}]`, false)
  })
  scan(sr.performerType, 'performerType', false)
  return { found, unknown }
}

const PRIORITY_URGENCY: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(FHIR_PRIORITY).map(([urgency, priority]) => [priority, urgency]),
)

export type FhirImportResult = E.Either<readonly string[], SendReferralData>

export interface FhirImportOptions {
  /**
   * The catalogs' coding maps (`catalogCodingResolver(await engine.catalog.all())`). Without it
   * only the `urn:referrals:*` codings are read and SNOMED CT / LOINC codings are refused.
   */
  readonly codings?: CodingResolver
}

/**
 * Specialty and category: from the `urn:referrals:specialty` / `urn:referrals:category` codings
 * of `code`, or else from the SNOMED CT / LOINC codings of `code`, `category` and `performerType`
 * through the catalog's coding map (a subcategory brings its parent). Every standard coding must be
 * mapped, all to the same (sub)category, and agree with the engine codings when both are given; a
 * coding of another system in `code` is refused. Failures name the coding's path.
 */
export const fhirServiceRequestToSendReferral = (
  input: unknown,
  options: FhirImportOptions = {},
): FhirImportResult => {
  const errors: string[] = []
  const need = <A>(value: A | null | undefined, path: string): A | undefined => {
    if (value === null || value === undefined) errors.push(path)
    return value ?? undefined
  }
  const sr = obj(input)
  if (sr === null || sr.resourceType !== 'ServiceRequest') return E.left(['resourceType'])
  if (sr.intent !== 'order' && sr.intent !== 'proposal') errors.push('intent')

  const referralId = need(
    str(
      arr(sr.identifier)
        .map(obj)
        .find((i) => i?.system === FHIR_SYSTEMS.referral)?.value,
    ),
    'identifier',
  )
  const practiceOf = (reference: unknown): string | null => {
    const identifier = obj(obj(reference)?.identifier)
    return identifier?.system === FHIR_SYSTEMS.practice ? str(identifier.value) : null
  }
  const senderPracticeId = need(practiceOf(sr.requester), 'requester.identifier')
  const performer = arr(sr.performer)
  const direct = performer.length > 0 ? practiceOf(performer[0]) : null
  if (performer.length > 0 && direct === null) errors.push('performer[0].identifier')
  const engineSpecialty = codeOf([sr.code], FHIR_SYSTEMS.specialty)[0]
  const engineCategories = codeOf([sr.code], FHIR_SYSTEMS.category)
  const standard = standardCodings(sr)
  const errorsBeforeCodings = errors.length
  errors.push(...standard.unknown)
  let coded: CodedCategory | undefined
  for (const c of standard.found) {
    const matches = options.codings?.(c.system, c.code) ?? []
    const match = matches[0]
    if (matches.length !== 1 || match === undefined) errors.push(c.path)
    else if (coded === undefined) coded = match
    else if (coded.specialtyId !== match.specialtyId || coded.categoryId !== match.categoryId)
      errors.push(c.path)
  }
  const codedCategories =
    coded === undefined
      ? []
      : coded.parentId === null
        ? [coded.categoryId]
        : [coded.parentId, coded.categoryId]
  if (
    coded !== undefined &&
    engineSpecialty !== undefined &&
    (engineSpecialty !== coded.specialtyId || engineCategories.join('|') !== codedCategories.join('|'))
  )
    errors.push(standard.found[0]?.path ?? 'code')
  // A refused coding is the failure to report, not the category it did not give.
  const codingFailed = errors.length > errorsBeforeCodings
  const specialtyId = codingFailed ? undefined : need(engineSpecialty ?? coded?.specialtyId, 'code')
  const categories = engineSpecialty === undefined ? codedCategories : engineCategories
  const categoryId = codingFailed ? undefined : need(categories[0], 'code')
  const regionId = need(codeOf(sr.locationCode, FHIR_SYSTEMS.region)[0], 'locationCode')
  const urgency = need(PRIORITY_URGENCY[str(sr.priority) ?? 'routine'], 'priority')
  const reason = need(str(obj(arr(sr.reasonCode)[0])?.text), 'reasonCode[0].text')

  // A lone ServiceRequest's Patient must be contained: `subject.reference` `#<id>`. Anything else
  // (`Patient/<id>`, an absolute URL, an unknown `#id`) is not resolvable here: this server holds
  // no Patient resources and fetches nothing from other servers.
  const subject = str(obj(sr.subject)?.reference)
  if (subject === null) return E.left([...errors, 'subject'])
  const containedIndex = arr(sr.contained).findIndex((c) => {
    const r = obj(c)
    return r?.resourceType === 'Patient' && subject === `#${String(r.id)}`
  })
  if (containedIndex < 0) return E.left([...errors, 'subject.reference'])
  const patient = obj(arr(sr.contained)[containedIndex]) ?? {}
  const p = `contained[${containedIndex}]`
  const identifiers = arr(patient.identifier).map(obj)
  const scoped = need(
    str(identifiers.find((i) => i?.system === FHIR_SYSTEMS.patient)?.value),
    `${p}.identifier`,
  )
  const healthNumber = identifiers.find((i) => i?.system === FHIR_SYSTEMS.healthNumber)?.value
  const name = obj(arr(patient.name)[0])
  const givenName = need(str(arr(name?.given)[0]), `${p}.name[0].given`)
  const familyName = need(str(name?.family), `${p}.name[0].family`)
  const dateOfBirth = need(str(patient.birthDate), `${p}.birthDate`)
  const telecom = arr(patient.telecom).map(obj)
  const email = telecom.find((x) => x?.system === 'email')?.value
  const phone = telecom.find((x) => x?.system === 'phone')?.value
  const address = str(obj(arr(patient.address)[0])?.text)
  const language = str(obj(obj(arr(patient.communication)[0])?.language)?.text)
  if (errors.length > 0) return E.left(errors)

  const prefix = `${senderPracticeId}:`
  const data = {
    referralId,
    senderPracticeId,
    patientId: scoped?.startsWith(prefix) ? scoped.slice(prefix.length) : scoped,
    phi: {
      patient: {
        givenName,
        familyName,
        dateOfBirth,
        ...(typeof healthNumber === 'string' ? { healthNumber } : {}),
        ...(typeof email === 'string' ? { email } : {}),
        ...(typeof phone === 'string' ? { phone } : {}),
        ...(address === null ? {} : { address }),
        ...(language === null ? {} : { communication: { language } }),
      },
      reason,
    },
    specialtyId,
    category: { categoryId, ...(categories[1] === undefined ? {} : { subcategoryId: categories[1] }) },
    regionId,
    urgency,
    target: direct === null ? { kind: 'pooled' } : { kind: 'direct', practiceId: direct },
    // The SNOMED CT / LOINC codings are carried onto the referral (the first of each) and exported again.
    ...(standard.found.length === 0
      ? {}
      : {
          codings: standard.found
            .filter((c, i, all) => all.findIndex((o) => o.system === c.system && o.code === c.code) === i)
            .map((c) => ({
              system: c.system,
              code: c.code,
              ...(c.display === null ? {} : { display: c.display }),
            })),
        }),
  }
  const decoded = SendReferralData.decode(data)
  if (E.isRight(decoded)) return decoded
  // Which FHIR element held the value the engine refused (the value itself is not reported).
  const FIELD_PATH: Readonly<Record<string, string>> = {
    referralId: 'identifier',
    senderPracticeId: 'requester.identifier',
    patientId: `${p}.identifier`,
    phi: 'reasonCode',
    specialtyId: 'code',
    category: 'code',
    regionId: 'locationCode',
    urgency: 'priority',
    target: 'performer',
    codings: 'code',
  }
  const paths = decoded.left.map((e) => {
    const keys = e.context.map((c) => c.key).filter((k) => k !== '' && !/^\d+$/.test(k))
    if (keys[0] === 'phi' && keys[1] === 'patient') return `${p}.${keys[2] ?? ''}`.replace(/\.$/, '')
    return FIELD_PATH[keys[0] ?? ''] ?? 'ServiceRequest'
  })
  return E.left([...new Set(paths)])
}

/**
 * The export's ServiceRequest with its Patient contained (`#patient`): the shape
 * `fhirServiceRequestToSendReferral` reads, so export → import round-trips.
 */
export const fhirServiceRequestWithPatient = (x: FhirReferralExport): FhirResource => ({
  ...x.serviceRequest,
  contained: [{ ...x.patient, id: 'patient' }],
  subject: { reference: '#patient' },
})

/** `Type/id` (optionally `/_history/v`): a relative literal reference (FHIR R4 §2.3.0.1 "Resolving references"). */
const RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/
/** The service base of an absolute `fullUrl` `<base>/<Type>/<id>`, or null (`urn:uuid:`, none). */
const baseOf = (fullUrl: string | null): string | null => {
  const m = fullUrl === null ? null : /^(https?:\/\/.+)\/[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.exec(fullUrl)
  return m?.[1] ?? null
}

/**
 * The entries of a Bundle that `reference` (made in the entry at `from`) points to: the entry whose
 * `fullUrl` is the reference (`urn:uuid:…`, or an absolute URL), or for a relative `Type/id` the
 * entry holding that resource type and id whose `fullUrl` has the same service base as the
 * referencing entry's (either without an absolute `fullUrl` counts as the same base).
 */
const bundleTargets = (
  entries: readonly (Json | null)[],
  resources: readonly (Json | null)[],
  from: number,
  reference: string,
): number[] => {
  const relative = RELATIVE.exec(reference)
  const fromBase = baseOf(str(entries[from]?.fullUrl))
  return resources.flatMap((r, i) => {
    const fullUrl = str(entries[i]?.fullUrl)
    if (fullUrl !== null && fullUrl === reference) return [i]
    if (relative === null || r === null || r.resourceType !== relative[1] || r.id !== relative[2]) return []
    const base = baseOf(fullUrl)
    return base === null || fromBase === null || base === fromBase ? [i] : []
  })
}

/**
 * A referral given as FHIR R4: a ServiceRequest (its Patient contained), or a `transaction` Bundle
 * with exactly one ServiceRequest entry whose `subject` references a Patient — contained in the
 * ServiceRequest (`#<id>`), or an entry of the same Bundle by its `fullUrl` (`urn:uuid:…` or an
 * absolute URL) or as `Patient/<id>` (`bundleTargets`). Failure paths name the Bundle's elements
 * (`Bundle.entry[i].resource.…`, FHIRPath from the Bundle). A reference that resolves to nothing,
 * to more than one entry or to a resource that is not a Patient fails at `….subject.reference`
 * (this server holds no Patient resources and fetches nothing from elsewhere); an absent subject at
 * `….subject`; entries sharing a `fullUrl` at the later one's `Bundle.entry[j].fullUrl`. Nothing
 * but paths is reported.
 */
export const fhirReferralImport = (input: unknown, options: FhirImportOptions = {}): FhirImportResult => {
  const bundle = obj(input)
  if (bundle?.resourceType !== 'Bundle') return fhirServiceRequestToSendReferral(input, options)
  if (bundle.type !== 'transaction') return E.left(['Bundle.type'])
  const entries = arr(bundle.entry).map((e) => obj(e))
  const resources = entries.map((e) => obj(e?.resource))
  const requests = resources.flatMap((r, i) => (r?.resourceType === 'ServiceRequest' ? [i] : []))
  if (requests.length !== 1) return E.left(['Bundle.entry'])
  const fullUrls = entries.map((e) => str(e?.fullUrl))
  const duplicates = fullUrls.flatMap((u, j) =>
    u !== null && fullUrls.indexOf(u) < j ? [`Bundle.entry[${j}].fullUrl`] : [],
  )
  if (duplicates.length > 0) return E.left(duplicates)
  const at = requests[0] as number
  const sr = resources[at] as Json
  const srPath = `Bundle.entry[${at}].resource`
  const subject = str(obj(sr.subject)?.reference)
  if (subject === null) return E.left([`${srPath}.subject`])
  if (subject.startsWith('#')) {
    // Contained in the ServiceRequest: read as a lone ServiceRequest, paths from the Bundle.
    const read = fhirServiceRequestToSendReferral(sr, options)
    return E.isRight(read) ? read : E.left(read.left.map((path) => `${srPath}.${path}`))
  }
  const targets = bundleTargets(entries, resources, at, subject)
  const patientAt = targets[0]
  if (targets.length !== 1 || patientAt === undefined || resources[patientAt]?.resourceType !== 'Patient')
    return E.left([`${srPath}.subject.reference`])
  const { id: _id, ...patient } = resources[patientAt] as Json
  const read = fhirServiceRequestToSendReferral(
    { ...sr, contained: [{ ...patient, id: 'patient' }], subject: { reference: '#patient' } },
    options,
  )
  if (E.isRight(read)) return read
  return E.left(
    read.left.map((path) =>
      path.startsWith('contained[0]')
        ? path.replace('contained[0]', `Bundle.entry[${patientAt}].resource`)
        : `${srPath}.${path}`,
    ),
  )
}
