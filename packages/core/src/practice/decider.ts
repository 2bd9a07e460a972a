import { type Either, left, right } from 'fp-ts/lib/Either.js'
import { type Actor, hasPlatformRole, type PracticeRole } from '../shared/actor.js'
import type { CommandMeta, Decider } from '../shared/decider.js'
import type { CategoryRef } from '../shared/domain-types.js'
import { absurd, type DomainError, domainError } from '../shared/errors.js'
import type { PracticeId, UserId } from '../shared/ids.js'
import type { PracticeCommandPayload, PracticeEvent, PracticeKind, SpecialistSettings } from './codecs.js'

export type PracticeCommand = PracticeCommandPayload & { readonly meta: CommandMeta }

export interface PracticeMember {
  readonly userId: UserId
  readonly role: PracticeRole
}

export interface ExistingPractice {
  readonly exists: true
  readonly practiceId: PracticeId
  readonly name: string
  readonly kind: PracticeKind
  /** In the order members joined; a user appears at most once. */
  readonly members: readonly PracticeMember[]
  readonly verified: boolean
  readonly receiving: 'active' | 'paused'
  /** Set by `SpecialistConfigured`; always null for clinics. */
  readonly settings: SpecialistSettings | null
}

export type PracticeState = { readonly exists: false } | ExistingPractice

export const practiceInitialState: PracticeState = { exists: false }

export const PRACTICE_NAME_MAX = 120
export const PRACTICE_PAUSE_REASON_MAX = 500
export const PRACTICE_SETTINGS_LIST_MAX = 500

type Decision = Either<DomainError, readonly PracticeEvent[]>

const emit = (...events: PracticeEvent[]): Decision => right(events)
const unchanged: Decision = right([])
const fail = (code: string, message: string, details?: Record<string, string | number | boolean>): Decision =>
  left(domainError(code, message, details))

const forbidden = (): Decision => fail('practice.forbidden', 'The actor may not do this in this practice')

const isAdmin = (actor: Actor): boolean => hasPlatformRole(actor, 'admin')

/** The actor's role in this practice, read from the practice's own member list (never from the client). */
const roleOf = (actor: Actor, practice: ExistingPractice): PracticeRole | null => {
  if (actor.kind !== 'user') return null
  return practice.members.find((m) => m.userId === actor.userId)?.role ?? null
}

/**
 * The actor needs one of `roles` in this practice. Platform admins get no bypass: their platform
 * role covers verification (and the catalog), not membership or settings, so an admin cannot make
 * itself a member of a practice and read its patients' data.
 */
const mayAct = (actor: Actor, practice: ExistingPractice, roles: readonly PracticeRole[]): boolean => {
  const role = roleOf(actor, practice)
  return role !== null && roles.includes(role)
}

const ownerCount = (practice: ExistingPractice): number =>
  practice.members.filter((m) => m.role === 'owner').length

const uniqueBy = <A>(items: readonly A[], key: (a: A) => string): readonly A[] => {
  const seen = new Set<string>()
  return items.filter((item) => {
    const k = key(item)
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

const categoryKey = (c: CategoryRef): string => `${c.categoryId}/${c.subcategoryId ?? ''}`

/** Duplicates are dropped (first occurrence kept), so an identical reconfiguration is recognised as a no-op. */
const normalizeSettings = (s: SpecialistSettings): SpecialistSettings => ({
  specialtyId: s.specialtyId,
  regions: uniqueBy(s.regions, (r) => r),
  categories: uniqueBy(
    s.categories.map((c) =>
      c.subcategoryId === undefined
        ? { categoryId: c.categoryId }
        : { categoryId: c.categoryId, subcategoryId: c.subcategoryId },
    ),
    categoryKey,
  ),
  fte: s.fte,
  insuranceNetworks: uniqueBy(s.insuranceNetworks, (n) => n),
  preferredProviderListed: s.preferredProviderListed,
})

const sameList = <A>(a: readonly A[], b: readonly A[], key: (x: A) => string): boolean =>
  a.length === b.length && a.every((x, i) => b[i] !== undefined && key(x) === key(b[i] as A))

const sameSettings = (a: SpecialistSettings, b: SpecialistSettings): boolean =>
  a.specialtyId === b.specialtyId &&
  a.fte === b.fte &&
  a.preferredProviderListed === b.preferredProviderListed &&
  sameList(a.regions, b.regions, (r) => r) &&
  sameList(a.categories, b.categories, categoryKey) &&
  sameList(a.insuranceNetworks, b.insuranceNetworks, (n) => n)

const invalidSettings = (field: string, rule: string): Decision =>
  fail('practice.invalid_settings', `Specialist settings field ${field} ${rule}`, { field })

const validateSettings = (s: SpecialistSettings): Decision | null => {
  if (s.regions.length === 0) return invalidSettings('regions', 'must name at least one region')
  for (const [field, list] of [
    ['regions', s.regions],
    ['categories', s.categories],
    ['insuranceNetworks', s.insuranceNetworks],
  ] as const) {
    if (list.length > PRACTICE_SETTINGS_LIST_MAX)
      return invalidSettings(field, `may hold at most ${PRACTICE_SETTINGS_LIST_MAX} entries`)
  }
  if (s.categories.some((c) => c.subcategoryId === c.categoryId))
    return invalidSettings('categories', 'may not name a category as its own subcategory')
  return null
}

const decideCreate = (
  data: Extract<PracticeCommand, { type: 'CreatePractice' }>['data'],
  meta: CommandMeta,
  state: PracticeState,
): Decision => {
  if (state.exists) return fail('practice.already_exists', 'A practice with this id already exists')
  // The creator becomes the owner, so only a user (not the system) can create a practice.
  if (meta.actor.kind !== 'user') return forbidden()
  const name = data.name.trim()
  if (name.length < 1 || name.length > PRACTICE_NAME_MAX)
    return fail('practice.invalid_name', `A practice name must be 1 to ${PRACTICE_NAME_MAX} characters`)
  return emit({
    type: 'PracticeCreated',
    data: { practiceId: data.practiceId, name, kind: data.kind, ownerId: meta.actor.userId },
  })
}

const decideExisting = (command: PracticeCommand, practice: ExistingPractice): Decision => {
  const { actor } = command.meta
  const practiceId = practice.practiceId
  switch (command.type) {
    case 'CreatePractice':
      return fail('practice.already_exists', 'A practice with this id already exists')

    case 'AddMember': {
      if (!mayAct(actor, practice, ['owner'])) return forbidden()
      const current = practice.members.find((m) => m.userId === command.data.userId)
      if (current?.role === command.data.role) return unchanged
      if (current !== undefined)
        return fail('practice.already_member', 'The user is already a member; change their role instead')
      return emit({
        type: 'MemberAdded',
        data: { practiceId, userId: command.data.userId, role: command.data.role },
      })
    }

    case 'RemoveMember': {
      if (!mayAct(actor, practice, ['owner'])) return forbidden()
      const current = practice.members.find((m) => m.userId === command.data.userId)
      if (current === undefined)
        return fail('practice.not_member', 'The user is not a member of this practice')
      if (current.role === 'owner' && ownerCount(practice) === 1)
        return fail('practice.last_owner', 'A practice must keep at least one owner')
      return emit({ type: 'MemberRemoved', data: { practiceId, userId: current.userId, role: current.role } })
    }

    case 'ChangeMemberRole': {
      if (!mayAct(actor, practice, ['owner'])) return forbidden()
      const current = practice.members.find((m) => m.userId === command.data.userId)
      if (current === undefined)
        return fail('practice.not_member', 'The user is not a member of this practice')
      if (current.role === command.data.role) return unchanged
      if (current.role === 'owner' && ownerCount(practice) === 1)
        return fail('practice.last_owner', 'A practice must keep at least one owner')
      return emit({
        type: 'MemberRoleChanged',
        data: { practiceId, userId: current.userId, previous: current.role, role: command.data.role },
      })
    }

    case 'ConfigureSpecialist': {
      if (!mayAct(actor, practice, ['owner'])) return forbidden()
      if (practice.kind !== 'specialist')
        return fail('practice.not_specialist', 'Only a specialist practice has specialist settings')
      const invalid = validateSettings(command.data)
      if (invalid !== null) return invalid
      const settings = normalizeSettings(command.data)
      if (practice.settings !== null && sameSettings(practice.settings, settings)) return unchanged
      return emit({ type: 'SpecialistConfigured', data: { practiceId, ...settings } })
    }

    case 'ChangeFte': {
      if (!mayAct(actor, practice, ['owner', 'specialist'])) return forbidden()
      if (practice.kind !== 'specialist')
        return fail('practice.not_specialist', 'Only a specialist practice has an FTE')
      if (practice.settings === null)
        return fail('practice.not_configured', 'Configure the specialist settings before changing the FTE')
      if (practice.settings.fte === command.data.fte) return unchanged
      return emit({
        type: 'FteChanged',
        data: { practiceId, previous: practice.settings.fte, fte: command.data.fte },
      })
    }

    case 'PauseReceiving': {
      if (!mayAct(actor, practice, ['owner', 'specialist'])) return forbidden()
      if (practice.kind !== 'specialist')
        return fail('practice.not_specialist', 'Only a specialist practice receives referrals')
      if (practice.receiving === 'paused') return unchanged
      const reason = command.data.reason?.trim() ?? ''
      if (reason.length > PRACTICE_PAUSE_REASON_MAX)
        return fail(
          'practice.invalid_reason',
          `A pause reason must be at most ${PRACTICE_PAUSE_REASON_MAX} characters`,
        )
      return emit({ type: 'ReceivingPaused', data: reason === '' ? { practiceId } : { practiceId, reason } })
    }

    case 'ResumeReceiving': {
      if (!mayAct(actor, practice, ['owner', 'specialist'])) return forbidden()
      if (practice.kind !== 'specialist')
        return fail('practice.not_specialist', 'Only a specialist practice receives referrals')
      if (practice.receiving === 'active') return unchanged
      return emit({ type: 'ReceivingResumed', data: { practiceId } })
    }

    case 'VerifyPractice':
      if (!isAdmin(actor)) return forbidden()
      return practice.verified ? unchanged : emit({ type: 'PracticeVerified', data: { practiceId } })

    case 'RevokeVerification':
      if (!isAdmin(actor)) return forbidden()
      return practice.verified ? emit({ type: 'VerificationRevoked', data: { practiceId } }) : unchanged

    default:
      return absurd(command)
  }
}

/**
 * Business rules of a practice (SPEC §3). Authorization is part of the rules: owners manage
 * members and settings; owners and specialists pause, resume and change the FTE; staff only read;
 * platform admins may do anything (they are not members unless added) and alone verify.
 * Restating the current state (pausing a paused practice, re-adding a member with the same role,
 * verifying a verified practice, …) is accepted and emits nothing.
 */
export const decidePractice = (command: PracticeCommand, state: PracticeState): Decision => {
  if (command.type === 'CreatePractice') return decideCreate(command.data, command.meta, state)
  if (!state.exists) return fail('practice.not_found', 'No practice with this id')
  return decideExisting(command, state)
}

/** Total: events that do not apply to the current state (e.g. before creation) leave it unchanged. */
export const evolvePractice = (state: PracticeState, event: PracticeEvent): PracticeState => {
  if (event.type === 'PracticeCreated') {
    if (state.exists) return state
    return {
      exists: true,
      practiceId: event.data.practiceId,
      name: event.data.name,
      kind: event.data.kind,
      members: [{ userId: event.data.ownerId, role: 'owner' }],
      verified: false,
      receiving: 'active',
      settings: null,
    }
  }
  if (!state.exists) return state
  switch (event.type) {
    case 'MemberAdded':
      return {
        ...state,
        members: [
          ...state.members.filter((m) => m.userId !== event.data.userId),
          { userId: event.data.userId, role: event.data.role },
        ],
      }
    case 'MemberRemoved':
      return { ...state, members: state.members.filter((m) => m.userId !== event.data.userId) }
    case 'MemberRoleChanged':
      return {
        ...state,
        members: state.members.map((m) =>
          m.userId === event.data.userId ? { ...m, role: event.data.role } : m,
        ),
      }
    case 'SpecialistConfigured': {
      const { practiceId: _, ...settings } = event.data
      return { ...state, settings }
    }
    case 'FteChanged':
      return state.settings === null
        ? state
        : { ...state, settings: { ...state.settings, fte: event.data.fte } }
    case 'ReceivingPaused':
      return { ...state, receiving: 'paused' }
    case 'ReceivingResumed':
      return { ...state, receiving: 'active' }
    case 'PracticeVerified':
      return { ...state, verified: true }
    case 'VerificationRevoked':
      return { ...state, verified: false }
    default:
      return absurd(event)
  }
}

export const practiceDecider: Decider<PracticeCommand, PracticeEvent, PracticeState> = {
  decide: decidePractice,
  evolve: evolvePractice,
  initialState: practiceInitialState,
}
