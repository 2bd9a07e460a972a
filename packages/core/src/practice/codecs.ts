import * as t from 'io-ts'
import { PracticeRole } from '../shared/actor.js'
import { CategoryRef, Fte } from '../shared/domain-types.js'
import { InsuranceNetworkId, PracticeId, RegionId, SpecialtyId, UserId } from '../shared/ids.js'

export const PracticeKind = t.keyof({ clinic: null, specialist: null })
export type PracticeKind = t.TypeOf<typeof PracticeKind>

/** The settings a specialist practice receives referrals with (SPEC §3). */
const specialistSettingsProps = {
  specialtyId: SpecialtyId,
  regions: t.readonlyArray(RegionId),
  categories: t.readonlyArray(CategoryRef),
  fte: Fte,
  insuranceNetworks: t.readonlyArray(InsuranceNetworkId),
  preferredProviderListed: t.boolean,
}
export const SpecialistSettings = t.readonly(t.strict(specialistSettingsProps))
export type SpecialistSettings = t.TypeOf<typeof SpecialistSettings>

const command = <T extends string, D extends t.Mixed>(type: T, data: D) =>
  t.readonly(t.strict({ type: t.literal(type), data }))

export const CreatePracticePayload = command(
  'CreatePractice',
  t.readonly(t.strict({ practiceId: PracticeId, name: t.string, kind: PracticeKind })),
)
export const AddMemberPayload = command(
  'AddMember',
  t.readonly(t.strict({ userId: UserId, role: PracticeRole })),
)
export const RemoveMemberPayload = command('RemoveMember', t.readonly(t.strict({ userId: UserId })))
export const ChangeMemberRolePayload = command(
  'ChangeMemberRole',
  t.readonly(t.strict({ userId: UserId, role: PracticeRole })),
)
export const ConfigureSpecialistPayload = command('ConfigureSpecialist', SpecialistSettings)
export const ChangeFtePayload = command('ChangeFte', t.readonly(t.strict({ fte: Fte })))
export const PauseReceivingPayload = command(
  'PauseReceiving',
  t.readonly(t.exact(t.partial({ reason: t.string }))),
)
export const ResumeReceivingPayload = command('ResumeReceiving', t.readonly(t.strict({})))
export const VerifyPracticePayload = command('VerifyPractice', t.readonly(t.strict({})))
export const RevokeVerificationPayload = command('RevokeVerification', t.readonly(t.strict({})))

/**
 * Every practice command as `{ type, data }`: what the HTTP layer decodes request bodies with.
 * The target practice of all but `CreatePractice` is the stream the command is sent to.
 */
export const PracticeCommandPayload = t.union([
  CreatePracticePayload,
  AddMemberPayload,
  RemoveMemberPayload,
  ChangeMemberRolePayload,
  ConfigureSpecialistPayload,
  ChangeFtePayload,
  PauseReceivingPayload,
  ResumeReceivingPayload,
  VerifyPracticePayload,
  RevokeVerificationPayload,
])
export type PracticeCommandPayload = t.TypeOf<typeof PracticeCommandPayload>

const event = <T extends string, P extends t.Props>(type: T, props: P) =>
  t.readonly(
    t.strict({ type: t.literal(type), data: t.readonly(t.strict({ practiceId: PracticeId, ...props })) }),
  )

export const PracticeCreated = event('PracticeCreated', {
  name: t.string,
  kind: PracticeKind,
  ownerId: UserId,
})
export const MemberAdded = event('MemberAdded', { userId: UserId, role: PracticeRole })
export const MemberRemoved = event('MemberRemoved', { userId: UserId, role: PracticeRole })
export const MemberRoleChanged = event('MemberRoleChanged', {
  userId: UserId,
  previous: PracticeRole,
  role: PracticeRole,
})
export const SpecialistConfigured = event('SpecialistConfigured', specialistSettingsProps)
export const FteChanged = event('FteChanged', { previous: Fte, fte: Fte })
export const ReceivingPaused = t.readonly(
  t.strict({
    type: t.literal('ReceivingPaused'),
    data: t.readonly(
      t.exact(t.intersection([t.type({ practiceId: PracticeId }), t.partial({ reason: t.string })])),
    ),
  }),
)
export const ReceivingResumed = event('ReceivingResumed', {})
export const PracticeVerified = event('PracticeVerified', {})
export const VerificationRevoked = event('VerificationRevoked', {})

/** Every practice event as `{ type, data }`: decodes events read from `practice-<id>` streams. */
export const PracticeEvent = t.union([
  PracticeCreated,
  MemberAdded,
  MemberRemoved,
  MemberRoleChanged,
  SpecialistConfigured,
  FteChanged,
  ReceivingPaused,
  ReceivingResumed,
  PracticeVerified,
  VerificationRevoked,
])
export type PracticeEvent = t.TypeOf<typeof PracticeEvent>
export type PracticeEventType = PracticeEvent['type']
