import * as E from 'fp-ts/lib/Either.js'
import { recipientProfile } from '../practice/views.js'
import type { PhiCipher } from '../privacy/port.js'
import {
  CaregiverRelationship,
  type CommunicationPreferences,
  ConsentVersion,
  currentConsent,
  type ExistingProgram,
  type IntakeCaregiver,
  type IntakeCommand,
  type IntakeGuidance,
  type IntakePerson,
  type IntakeSubmitter,
  intakeLinkContext,
  intakeStreamId,
  LinkCode,
  type ProgramLink,
  type ProgramState,
  type PublishedConsent,
  programDecider,
  programIdFromStreamId,
} from '../program/index.js'
import { ReferralCalendarDate, type SendReferralData } from '../referral/codecs.js'
import { PUBLIC_INTAKE_ACTOR } from '../shared/actor.js'
import type { CorrelationId, IntakeId, ProgramId, ReferralId } from '../shared/ids.js'
import { IntakeId as IntakeIdCodec, type PatientId, unsafeId } from '../shared/ids.js'
import type { EventStore, GlobalPosition } from '../store/port.js'
import { catchUpDecoded, serializedRefresh } from './catch-up.js'
import { executeCommand, loadAggregate } from './command-handler.js'
import type { Engine } from './engine.js'
import { intakeAggregate, programAggregate } from './programs.js'

// ---------------------------------------------------------------------------------------------
// Code → link lookup
// ---------------------------------------------------------------------------------------------

/** A link found by its public code: its program (as it is now) and the link with its status. */
export interface LinkLookup {
  readonly program: ExistingProgram
  readonly link: ProgramLink
  /** The consent version an intake on this link must agree to; null before the first is published. */
  readonly consent: PublishedConsent | null
}

/** The link of `state` with this code, or null (pure: a program's state is all it needs). */
export const linkWithCode = (state: ProgramState, code: string): LinkLookup | null => {
  if (!state.exists) return null
  const link = state.links.find((l) => l.code === code)
  return link === undefined ? null : { program: state, link, consent: currentConsent(state) }
}

/**
 * Every referral link by its code, kept by catching up on `program-` streams in global order (a
 * cache of the store like the practice directory: `refresh()` before a lookup gives
 * read-your-writes). Codes are unique across programs (`program.link_code_taken` is the program
 * decider's rule for one program; across programs the generator's randomness makes a clash
 * improbable, and the first program to use a code keeps it here).
 */
export interface LinkDirectory {
  readonly refresh: () => Promise<void>
  /** The link with this code, or null: unknown, or not a well-formed code at all. */
  readonly lookup: (code: string) => LinkLookup | null
}

export const createLinkDirectory = (store: EventStore): LinkDirectory => {
  const programs = new Map<ProgramId, ProgramState>()
  const byCode = new Map<string, ProgramId>()
  let position: GlobalPosition = 0n
  const catchUp = catchUpDecoded({
    store,
    aggregate: programAggregate,
    streamPrefix: 'program-',
    label: 'link directory',
    position: () => position,
    advance: (p) => {
      position = p
    },
    apply: (event, stored) => {
      const programId = programIdFromStreamId(stored.streamId)
      if (programId === null) return
      programs.set(programId, programDecider.evolve(programs.get(programId) ?? { exists: false }, event))
      if (event.type === 'ReferralLinkCreated' && !byCode.has(event.data.code))
        byCode.set(event.data.code, programId)
    },
  })
  return {
    refresh: serializedRefresh(catchUp),
    lookup: (code) => {
      if (!LinkCode.is(code)) return null
      const programId = byCode.get(code)
      return programId === undefined ? null : linkWithCode(programs.get(programId) ?? { exists: false }, code)
    },
  }
}

// ---------------------------------------------------------------------------------------------
// The intake form: pure parsing, one clear message per field, never the value
// ---------------------------------------------------------------------------------------------

/** A field of the intake form and what is wrong with it. Messages never repeat what was sent. */
export interface FieldProblem {
  readonly field: string
  readonly message: string
}

export interface IntakeSubmission {
  readonly submittedBy: IntakeSubmitter
  readonly consentVersion: ConsentVersion
  readonly communication: CommunicationPreferences
  readonly patient: IntakePerson & { readonly dateOfBirth: string }
  readonly caregiver?: IntakeCaregiver
  /** What the person would like help with, in their words (PHI: goes into the sealed referral only). */
  readonly reason?: string
}

/** The form's field names, shared by the page that renders the form and the parser. */
export const INTAKE_FIELDS = {
  submittedBy: 'submittedBy',
  relationship: 'relationship',
  patientGivenName: 'patientGivenName',
  patientFamilyName: 'patientFamilyName',
  patientDateOfBirth: 'patientDateOfBirth',
  patientEmail: 'patientEmail',
  patientPhone: 'patientPhone',
  caregiverGivenName: 'caregiverGivenName',
  caregiverFamilyName: 'caregiverFamilyName',
  caregiverEmail: 'caregiverEmail',
  caregiverPhone: 'caregiverPhone',
  reason: 'reason',
  contactEmail: 'contactEmail',
  contactSms: 'contactSms',
  contactPhone: 'contactPhone',
  contactMail: 'contactMail',
  consentVersion: 'consentVersion',
  consentAgreed: 'consentAgreed',
} as const

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const PHONE = /^\+?[0-9 ().-]{7,40}$/

/**
 * Parses a submitted intake form (`fields`: the form's values by name; a missing field is
 * `undefined`). Every problem names its field with a message a person can act on; none repeats
 * the value. `today` (YYYY-MM-DD, from the clock port) bounds the date of birth.
 */
export const parseIntakeForm = (
  fields: Readonly<Record<string, string | undefined>>,
  today: string,
): E.Either<readonly FieldProblem[], IntakeSubmission> => {
  const problems: FieldProblem[] = []
  const problem = (field: string, message: string) => {
    problems.push({ field, message })
  }
  const text = (field: string) => (fields[field] ?? '').trim()
  const name = (field: string, label: string): string => {
    const value = text(field)
    if (value === '') problem(field, `Enter ${label}.`)
    else if (value.length > 200) problem(field, `${capitalise(label)} must be at most 200 characters.`)
    return value
  }
  const optionalEmail = (field: string): string | undefined => {
    const value = text(field)
    if (value === '') return undefined
    if (value.length > 254 || !EMAIL.test(value))
      problem(field, 'Enter an email address like name@example.org, or leave it empty.')
    return value
  }
  const optionalPhone = (field: string): string | undefined => {
    const value = text(field)
    if (value === '') return undefined
    if (!PHONE.test(value) || value.replace(/\D/g, '').length < 7)
      problem(field, 'Enter a phone number of at least 7 digits, or leave it empty.')
    return value
  }
  const checked = (field: string) => fields[field] === 'yes'

  const F = INTAKE_FIELDS
  const who = text(F.submittedBy)
  if (who !== 'patient' && who !== 'caregiver')
    problem(F.submittedBy, 'Choose whether you are the patient or a caregiver.')
  let submittedBy: IntakeSubmitter = { kind: 'patient' }
  if (who === 'caregiver') {
    const relationship = text(F.relationship)
    if (!CaregiverRelationship.is(relationship))
      problem(F.relationship, 'Choose your relationship to the patient.')
    else submittedBy = { kind: 'caregiver', relationship }
  }

  const givenName = name(F.patientGivenName, "the patient's first name")
  const familyName = name(F.patientFamilyName, "the patient's last name")
  const dob = text(F.patientDateOfBirth)
  if (dob === '') problem(F.patientDateOfBirth, "Enter the patient's date of birth.")
  else if (!ReferralCalendarDate.is(dob))
    problem(F.patientDateOfBirth, 'Enter the date of birth as year-month-day, e.g. 1980-04-23.')
  else if (dob > today) problem(F.patientDateOfBirth, 'The date of birth cannot be in the future.')
  const patientEmail = optionalEmail(F.patientEmail)
  const patientPhone = optionalPhone(F.patientPhone)

  let caregiver: IntakeCaregiver | undefined
  if (who === 'caregiver') {
    const cgGiven = name(F.caregiverGivenName, 'your first name')
    const cgFamily = name(F.caregiverFamilyName, 'your last name')
    const cgEmail = optionalEmail(F.caregiverEmail)
    const cgPhone = optionalPhone(F.caregiverPhone)
    caregiver = {
      givenName: cgGiven,
      familyName: cgFamily,
      ...(cgEmail === undefined ? {} : { email: cgEmail }),
      ...(cgPhone === undefined ? {} : { phone: cgPhone }),
    }
  }

  const reason = text(F.reason)
  if (reason.length > 2000) problem(F.reason, 'Please keep this to at most 2000 characters.')

  const communication: CommunicationPreferences = {
    email: checked(F.contactEmail),
    sms: checked(F.contactSms),
    phone: checked(F.contactPhone),
    mail: checked(F.contactMail),
  }
  const anyEmail = patientEmail !== undefined || caregiver?.email !== undefined
  const anyPhone = patientPhone !== undefined || caregiver?.phone !== undefined
  if (communication.email && !anyEmail)
    problem(F.contactEmail, 'To be contacted by email, enter an email address above.')
  if (communication.sms && !anyPhone)
    problem(F.contactSms, 'To be contacted by text message, enter a phone number above.')
  if (communication.phone && !anyPhone)
    problem(F.contactPhone, 'To be contacted by phone, enter a phone number above.')

  const version = Number(text(F.consentVersion))
  if (!ConsentVersion.is(version))
    problem(F.consentVersion, 'Reload the page and read the consent text again.')
  if (!checked(F.consentAgreed)) problem(F.consentAgreed, 'You must agree to the consent text to continue.')

  if (problems.length > 0) return E.left(problems)
  return E.right({
    submittedBy,
    consentVersion: version as ConsentVersion,
    communication,
    patient: {
      givenName,
      familyName,
      dateOfBirth: dob,
      ...(patientEmail === undefined ? {} : { email: patientEmail }),
      ...(patientPhone === undefined ? {} : { phone: patientPhone }),
    },
    ...(caregiver === undefined ? {} : { caregiver }),
    ...(reason === '' ? {} : { reason }),
  })
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

// ---------------------------------------------------------------------------------------------
// The public intake: open a link, submit an intake, turn it into a routed referral
// ---------------------------------------------------------------------------------------------

/** What the intake page shows: nothing that identifies anyone, nothing clinical. */
export interface IntakePage {
  readonly programName: string
  readonly clinicName: string
  readonly consent: PublishedConsent
  /** FAQ, insurance and scheduling guidance, when the program set it. */
  readonly guidance: IntakeGuidance | null
}

export type OpenOutcome =
  | { readonly kind: 'opened'; readonly intakeId: IntakeId; readonly page: IntakePage }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'gone' }

export type SubmitOutcome =
  | { readonly kind: 'submitted'; readonly referralId: ReferralId; readonly page: IntakePage }
  | { readonly kind: 'invalid'; readonly problems: readonly FieldProblem[]; readonly page: IntakePage }
  /** The form token is unknown or belongs to another link: the page must be opened again. */
  | { readonly kind: 'expired' }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'gone' }

export interface PublicIntakeOptions {
  readonly engine: Engine
  /** The engine's PHI cipher: the intake's PHI is sealed under the patient's key like a referral's. */
  readonly cipher?: PhiCipher
  readonly links?: LinkDirectory
}

/**
 * The patient an intake names: `intake-<intakeId>`. Intake ids are drawn by the engine, never by
 * a client, so no practice scoping is needed for two practices not to share a key. The intake and
 * its referral are sealed under this one patient's key: forgetting it redacts both.
 */
export const intakePatientId = (intakeId: IntakeId): PatientId => unsafeId<PatientId>(`intake-${intakeId}`)

/** The referral an intake becomes: `intake-<intakeId>`, so a retried submission finds it again. */
export const intakeReferralId = (intakeId: IntakeId): ReferralId => unsafeId<ReferralId>(`intake-${intakeId}`)

/**
 * The public intake of referral programs, for the unauthenticated `/r/:code` page: every command
 * runs as `PUBLIC_INTAKE_ACTOR`. `open` records `OpenReferralLink` under a new intake id (the
 * page's form token). `submit` records `SubmitIntake` (the patient is a new one,
 * `intakePatientId`), sends the referral `intake-<intakeId>`
 * for the program's practice to its target (pooled: routed like any other; direct: to the
 * practice, filed under its first region and category), then `RecordIntakeReferralSent`. Each
 * step is idempotent, so a retried or concurrent submission of one token makes one referral.
 */
export const createPublicIntake = (options: PublicIntakeOptions) => {
  const { engine } = options
  const links = options.links ?? createLinkDirectory(engine.store)
  const intake = intakeAggregate(options.cipher)
  const deps = { store: engine.store, ids: engine.ids }
  const ctx = (correlationId: CorrelationId) => ({ actor: PUBLIC_INTAKE_ACTOR, correlationId })

  const pageOf = async (found: LinkLookup): Promise<IntakePage | null> => {
    if (found.consent === null) return null
    await engine.directory.refresh()
    const practice = engine.directory.get(found.program.practiceId)
    return {
      programName: found.program.name,
      clinicName: practice.exists ? practice.name : found.program.name,
      consent: found.consent,
      guidance: found.program.guidance ?? null,
    }
  }

  /** The link and its page, or why there is none (unknown: 404; paused, retired, no consent: 410). */
  const accepting = async (
    code: string,
  ): Promise<{ found: LinkLookup; page: IntakePage } | { kind: 'not_found' } | { kind: 'gone' }> => {
    await links.refresh()
    const found = links.lookup(code)
    if (found === null) return { kind: 'not_found' }
    const page = await pageOf(found)
    if (found.link.status !== 'active' || page === null) return { kind: 'gone' }
    return { found, page }
  }

  const open = async (code: string, correlationId: CorrelationId): Promise<OpenOutcome> => {
    const a = await accepting(code)
    if ('kind' in a) return a
    const intakeId = unsafeId<IntakeId>(engine.ids.next())
    const command: IntakeCommand = {
      type: 'OpenReferralLink',
      data: { intakeId, linkId: a.found.link.linkId },
      context: { link: intakeLinkContext(a.found.program, a.found.link.linkId) },
      meta: engine.meta(ctx(correlationId)),
    }
    const r = await executeCommand(intake, deps, intakeStreamId(intakeId), command)()
    if (E.isLeft(r)) {
      if (r.left._tag === 'DomainError' && r.left.code.startsWith('intake.link_')) return { kind: 'gone' }
      throw new Error(`public intake: ${r.left.message}`)
    }
    return { kind: 'opened', intakeId, page: a.page }
  }

  const referralData = (
    found: LinkLookup,
    intakeId: IntakeId,
    patientId: PatientId,
    s: IntakeSubmission,
  ): SendReferralData | null => {
    const program = found.program
    const { referringPersonId: _person, ...attribution } = found.link.attribution
    const base = {
      referralId: intakeReferralId(intakeId),
      senderPracticeId: program.practiceId,
      patientId,
      phi: {
        patient: {
          ...s.patient,
          consent: { email: s.communication.email, sms: s.communication.sms, phone: s.communication.phone },
        },
        reason: s.reason ?? `Referral-program intake: ${program.name}`,
      },
      urgency: 'routine' as const,
      attribution,
    }
    if (program.target.kind === 'pooled') {
      const { regionId, specialtyId, category } = program.target
      return { ...base, regionId, specialtyId, category, target: { kind: 'pooled' } }
    }
    const profile = recipientProfile(engine.directory.get(program.target.practiceId))
    const regionId = profile?.regions[0]
    const category = profile?.categories[0]
    if (profile?.specialtyId == null || regionId === undefined || category === undefined) return null
    return {
      ...base,
      regionId,
      specialtyId: profile.specialtyId,
      category,
      target: { kind: 'direct', practiceId: program.target.practiceId },
    }
  }

  const submit = async (
    code: string,
    token: string,
    submission: IntakeSubmission,
    correlationId: CorrelationId,
  ): Promise<SubmitOutcome> => {
    await links.refresh()
    const found = links.lookup(code)
    if (found === null) return { kind: 'not_found' }
    if (!IntakeIdCodec.is(token)) return { kind: 'expired' }
    const streamId = intakeStreamId(token)
    const loaded = await loadAggregate(intake, engine.store, streamId)()
    if (E.isLeft(loaded)) throw new Error(`public intake: ${loaded.left.message}`)
    let state = loaded.right.state
    if (!state.exists || state.linkId !== found.link.linkId) return { kind: 'expired' }
    const page = await pageOf(found)
    if (page === null) return { kind: 'gone' }
    // Already converted: a retry of a submission that succeeded answers the same confirmation.
    if (state.referralId !== null) return { kind: 'submitted', referralId: state.referralId, page }
    if (found.link.status !== 'active') return { kind: 'gone' }

    const scoped = intakePatientId(token)
    if (state.stage === 'opened') {
      const r = await executeCommand(intake, deps, streamId, {
        type: 'SubmitIntake',
        data: {
          patientId: scoped,
          submittedBy: submission.submittedBy,
          consentVersion: submission.consentVersion,
          communication: submission.communication,
          phi: {
            patient: submission.patient,
            ...(submission.caregiver === undefined ? {} : { caregiver: submission.caregiver }),
          },
        },
        context: { link: intakeLinkContext(found.program, found.link.linkId) },
        meta: engine.meta(ctx(correlationId)),
      })()
      if (E.isLeft(r)) {
        const error = r.left
        if (error._tag !== 'DomainError') throw new Error(`public intake: ${error.message}`)
        if (error.code === 'intake.consent_outdated')
          return {
            kind: 'invalid',
            problems: [
              {
                field: INTAKE_FIELDS.consentAgreed,
                message: 'The consent text has changed. Please read the current text and agree again.',
              },
            ],
            page,
          }
        if (error.code === 'intake.invalid')
          return {
            kind: 'invalid',
            problems: [{ field: String(error.details?.field ?? 'form'), message: error.message }],
            page,
          }
        if (error.code.startsWith('intake.link_') || error.code === 'intake.no_consent_published')
          return { kind: 'gone' }
        // `intake.already_submitted`: a concurrent submission of the same token won; go on with it.
        if (error.code !== 'intake.already_submitted') throw new Error(`public intake: ${error.code}`)
      }
      const reloaded = await loadAggregate(intake, engine.store, streamId)()
      if (E.isLeft(reloaded)) throw new Error(`public intake: ${reloaded.left.message}`)
      state = reloaded.right.state
      if (!state.exists) throw new Error('public intake: the intake vanished')
      if (state.referralId !== null) return { kind: 'submitted', referralId: state.referralId, page }
    }

    const patientId = state.patientId ?? scoped
    const data = referralData(found, token, patientId, submission)
    if (data === null) throw new Error('public intake: the program target cannot receive referrals')
    const sent = await engine.referrals.execute(
      data.referralId,
      { type: 'SendReferral', data },
      ctx(correlationId),
    )()
    if (E.isLeft(sent) && !(sent.left._tag === 'DomainError' && sent.left.code === 'referral.already_exists'))
      throw new Error(
        `public intake: ${sent.left._tag === 'DomainError' ? sent.left.code : sent.left.message}`,
      )
    const recorded = await executeCommand(intake, deps, streamId, {
      type: 'RecordIntakeReferralSent',
      data: { referralId: data.referralId },
      meta: engine.meta(ctx(correlationId)),
    })()
    if (E.isLeft(recorded))
      throw new Error(
        `public intake: ${recorded.left._tag === 'DomainError' ? recorded.left.code : recorded.left.message}`,
      )
    return { kind: 'submitted', referralId: data.referralId, page }
  }

  /** The page of a link without recording anything (to show the form again with its problems). */
  const view = async (
    code: string,
  ): Promise<{ kind: 'page'; page: IntakePage } | { kind: 'not_found' } | { kind: 'gone' }> => {
    const a = await accepting(code)
    return 'kind' in a ? a : { kind: 'page', page: a.page }
  }

  /** An intake's stream, its PHI opened (or `{ redacted: true }` once the patient is forgotten). */
  const load = (intakeId: IntakeId) => loadAggregate(intake, engine.store, intakeStreamId(intakeId))

  return { links, open, submit, view, load }
}

export type PublicIntake = ReturnType<typeof createPublicIntake>
