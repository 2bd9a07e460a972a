import { isLeft } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { Actor } from '../shared/actor.js'
import type { CommandMeta } from '../shared/decider.js'
import type { Fte } from '../shared/domain-types.js'
import type {
  CategoryId,
  CommandId,
  CorrelationId,
  InsuranceNetworkId,
  PracticeId,
  RegionId,
  SpecialtyId,
  UserId,
} from '../shared/ids.js'
import { unsafeId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { given } from '../testing/given.js'
import type { PracticeCommandPayload, PracticeEvent, SpecialistSettings } from './codecs.js'
import { type PracticeCommand, practiceDecider } from './decider.js'
import { membersOf, recipientProfile } from './views.js'

const pid = unsafeId<PracticeId>('p1')
const uid = (s: string) => unsafeId<UserId>(s)
const alice = uid('alice')
const bob = uid('bob')
const carol = uid('carol')
const dave = uid('dave')

const user = (userId: UserId, platformRoles: readonly ('admin' | 'auditor')[] = []): Actor => ({
  kind: 'user',
  userId,
  platformRoles,
  memberships: [],
})
const admin = user(uid('root'), ['admin'])
const auditor = user(uid('audit'), ['auditor'])
const system: Actor = { kind: 'system', component: 'scheduler' }

const meta = (actor: Actor): CommandMeta => ({
  commandId: unsafeId<CommandId>('cmd-1'),
  actor,
  now: '2026-03-01T09:00:00.000Z' as Instant,
  correlationId: unsafeId<CorrelationId>('corr-1'),
})
const by = (actor: Actor, payload: PracticeCommandPayload): PracticeCommand =>
  ({ ...payload, meta: meta(actor) }) as PracticeCommand

const fte = (n: number) => n as Fte
const settings: SpecialistSettings = {
  specialtyId: unsafeId<SpecialtyId>('ortho'),
  regions: [unsafeId<RegionId>('north')],
  categories: [{ categoryId: unsafeId<CategoryId>('knee') }],
  fte: fte(1),
  insuranceNetworks: [unsafeId<InsuranceNetworkId>('public')],
  preferredProviderListed: false,
}

// alice owns, bob is the specialist, carol is staff.
const created = (kind: 'clinic' | 'specialist' = 'specialist'): PracticeEvent => ({
  type: 'PracticeCreated',
  data: { practiceId: pid, name: 'North Ortho', kind, ownerId: alice },
})
const added = (userId: UserId, role: 'owner' | 'specialist' | 'staff'): PracticeEvent => ({
  type: 'MemberAdded',
  data: { practiceId: pid, userId, role },
})
const team = (kind: 'clinic' | 'specialist' = 'specialist'): PracticeEvent[] => [
  created(kind),
  added(bob, 'specialist'),
  added(carol, 'staff'),
]
const configured: PracticeEvent = { type: 'SpecialistConfigured', data: { practiceId: pid, ...settings } }
const paused: PracticeEvent = { type: 'ReceivingPaused', data: { practiceId: pid } }
const verified: PracticeEvent = { type: 'PracticeVerified', data: { practiceId: pid } }

const spec = given(practiceDecider)

describe('CreatePractice', () => {
  const create = (name = '  North Ortho ') =>
    ({ type: 'CreatePractice', data: { practiceId: pid, name, kind: 'specialist' } }) as const

  it('creates the practice with the creator as owner and a trimmed name', () => {
    spec([])
      .when(by(user(alice), create()))
      .thenEmits([created()])
    const state = spec([])
      .when(by(user(alice), create()))
      .state()
    expect(membersOf(state)).toEqual([{ userId: alice, role: 'owner' }])
  })

  it('rejects a second creation of the same practice', () => {
    spec([created()])
      .when(by(user(bob), create()))
      .thenFails('practice.already_exists')
  })

  it('needs a user to become owner: the system may not create a practice', () => {
    spec([]).when(by(system, create())).thenFails('practice.forbidden')
  })

  it('rejects blank and over-long names without echoing them', () => {
    spec([])
      .when(by(user(alice), create('   ')))
      .thenFails('practice.invalid_name')
    const long = 'Secret'.repeat(21)
    spec([])
      .when(by(user(alice), create(long)))
      .thenFails('practice.invalid_name')
    const result = practiceDecider.decide(by(user(alice), create(long)), practiceDecider.initialState)
    expect(isLeft(result) && result.left.message.includes('Secret')).toBe(false)
  })

  it('accepts a name of exactly 120 characters', () => {
    const name = 'x'.repeat(120)
    spec([])
      .when(by(user(alice), create(name)))
      .thenEmits([
        { type: 'PracticeCreated', data: { practiceId: pid, name, kind: 'specialist', ownerId: alice } },
      ])
  })
})

describe('commands on a missing practice', () => {
  it('fail with practice.not_found', () => {
    spec([])
      .when(by(admin, { type: 'AddMember', data: { userId: bob, role: 'staff' } }))
      .thenFails('practice.not_found')
    spec([])
      .when(by(admin, { type: 'VerifyPractice', data: {} }))
      .thenFails('practice.not_found')
  })
})

describe('AddMember', () => {
  const addDave = { type: 'AddMember', data: { userId: dave, role: 'staff' } } as const

  it('lets an owner add a member', () => {
    spec(team())
      .when(by(user(alice), addDave))
      .thenEmits([added(dave, 'staff')])
  })

  it('forbids specialists, staff, outsiders, auditors and platform admins', () => {
    // An admin could otherwise add itself as a member and read the practice's patients' data.
    for (const actor of [user(bob), user(carol), user(dave), auditor, system, admin]) {
      spec(team()).when(by(actor, addDave)).thenFails('practice.forbidden')
    }
  })

  it('ignores actor memberships claimed outside the practice stream', () => {
    const claimed: Actor = { ...user(dave), memberships: [{ practiceId: pid, role: 'owner' }] } as Actor
    spec(team()).when(by(claimed, addDave)).thenFails('practice.forbidden')
  })

  it('is a no-op for an existing member with the same role', () => {
    spec(team())
      .when(by(user(alice), { type: 'AddMember', data: { userId: carol, role: 'staff' } }))
      .thenEmits([])
  })

  it('rejects an existing member with another role', () => {
    spec(team())
      .when(by(user(alice), { type: 'AddMember', data: { userId: carol, role: 'owner' } }))
      .thenFails('practice.already_member')
  })
})

describe('RemoveMember', () => {
  it('lets an owner remove a member', () => {
    spec(team())
      .when(by(user(alice), { type: 'RemoveMember', data: { userId: carol } }))
      .thenEmits([{ type: 'MemberRemoved', data: { practiceId: pid, userId: carol, role: 'staff' } }])
  })

  it('cannot remove the last owner; an admin may not remove members at all', () => {
    spec(team())
      .when(by(user(alice), { type: 'RemoveMember', data: { userId: alice } }))
      .thenFails('practice.last_owner')
    spec(team())
      .when(by(admin, { type: 'RemoveMember', data: { userId: alice } }))
      .thenFails('practice.forbidden')
  })

  it('can remove an owner while another owner remains', () => {
    spec([...team(), added(dave, 'owner')])
      .when(by(user(dave), { type: 'RemoveMember', data: { userId: alice } }))
      .thenEmits([{ type: 'MemberRemoved', data: { practiceId: pid, userId: alice, role: 'owner' } }])
  })

  it('rejects removing a non-member', () => {
    spec(team())
      .when(by(user(alice), { type: 'RemoveMember', data: { userId: dave } }))
      .thenFails('practice.not_member')
  })

  it('forbids non-owners', () => {
    spec(team())
      .when(by(user(bob), { type: 'RemoveMember', data: { userId: carol } }))
      .thenFails('practice.forbidden')
  })

  it('removed members lose their rights', () => {
    spec([
      ...team(),
      added(dave, 'owner'),
      { type: 'MemberRemoved', data: { practiceId: pid, userId: dave, role: 'owner' } },
    ])
      .when(by(user(dave), { type: 'RemoveMember', data: { userId: carol } }))
      .thenFails('practice.forbidden')
  })
})

describe('ChangeMemberRole', () => {
  it('records the previous role', () => {
    spec(team())
      .when(by(user(alice), { type: 'ChangeMemberRole', data: { userId: carol, role: 'owner' } }))
      .thenEmits([
        {
          type: 'MemberRoleChanged',
          data: { practiceId: pid, userId: carol, previous: 'staff', role: 'owner' },
        },
      ])
  })

  it('is a no-op when the role is unchanged', () => {
    spec(team())
      .when(by(user(alice), { type: 'ChangeMemberRole', data: { userId: bob, role: 'specialist' } }))
      .thenEmits([])
  })

  it('cannot demote the last owner', () => {
    spec(team())
      .when(by(user(alice), { type: 'ChangeMemberRole', data: { userId: alice, role: 'staff' } }))
      .thenFails('practice.last_owner')
  })

  it('rejects a non-member and forbids non-owners', () => {
    spec(team())
      .when(by(user(alice), { type: 'ChangeMemberRole', data: { userId: dave, role: 'staff' } }))
      .thenFails('practice.not_member')
    spec(team())
      .when(by(user(bob), { type: 'ChangeMemberRole', data: { userId: bob, role: 'owner' } }))
      .thenFails('practice.forbidden')
  })
})

describe('ConfigureSpecialist', () => {
  const configure = (s: SpecialistSettings = settings) => ({ type: 'ConfigureSpecialist', data: s }) as const

  it('lets an owner, not a platform admin, configure a specialist practice', () => {
    spec(team())
      .when(by(user(alice), configure()))
      .thenEmits([configured])
    spec(team()).when(by(admin, configure())).thenFails('practice.forbidden')
  })

  it('drops duplicate regions, categories and networks', () => {
    const knee = unsafeId<CategoryId>('knee')
    spec(team())
      .when(
        by(
          user(alice),
          configure({
            ...settings,
            regions: [unsafeId<RegionId>('north'), unsafeId<RegionId>('north')],
            categories: [{ categoryId: knee }, { categoryId: knee }],
            insuranceNetworks: [
              unsafeId<InsuranceNetworkId>('public'),
              unsafeId<InsuranceNetworkId>('public'),
            ],
          }),
        ),
      )
      .thenEmits([configured])
  })

  it('is a no-op when the settings are unchanged', () => {
    spec([...team(), configured])
      .when(by(user(alice), configure()))
      .thenEmits([])
  })

  it('emits again when a setting changes', () => {
    const listed = { ...settings, preferredProviderListed: true }
    spec([...team(), configured])
      .when(by(user(alice), configure(listed)))
      .thenEmits([{ type: 'SpecialistConfigured', data: { practiceId: pid, ...listed } }])
  })

  it('only applies to specialist practices', () => {
    spec(team('clinic'))
      .when(by(user(alice), configure()))
      .thenFails('practice.not_specialist')
  })

  it('needs at least one region', () => {
    spec(team())
      .when(by(user(alice), configure({ ...settings, regions: [] })))
      .thenFails('practice.invalid_settings')
  })

  it('rejects a category listed as its own subcategory', () => {
    const knee = unsafeId<CategoryId>('knee')
    spec(team())
      .when(
        by(user(alice), configure({ ...settings, categories: [{ categoryId: knee, subcategoryId: knee }] })),
      )
      .thenFails('practice.invalid_settings')
  })

  it('is for owners only', () => {
    spec(team())
      .when(by(user(bob), configure()))
      .thenFails('practice.forbidden')
    spec(team())
      .when(by(user(carol), configure()))
      .thenFails('practice.forbidden')
  })
})

describe('ChangeFte', () => {
  const change = (n: number) => ({ type: 'ChangeFte', data: { fte: fte(n) } }) as const

  it('lets the specialist change the FTE and records the previous one', () => {
    spec([...team(), configured])
      .when(by(user(bob), change(0.5)))
      .thenEmits([{ type: 'FteChanged', data: { practiceId: pid, previous: fte(1), fte: fte(0.5) } }])
  })

  it('is a no-op for the same FTE', () => {
    spec([...team(), configured])
      .when(by(user(alice), change(1)))
      .thenEmits([])
  })

  it('needs configured specialist settings', () => {
    spec(team())
      .when(by(user(bob), change(0.5)))
      .thenFails('practice.not_configured')
    spec(team('clinic'))
      .when(by(user(alice), change(0.5)))
      .thenFails('practice.not_specialist')
  })

  it('forbids staff', () => {
    spec([...team(), configured])
      .when(by(user(carol), change(0.5)))
      .thenFails('practice.forbidden')
  })
})

describe('PauseReceiving / ResumeReceiving', () => {
  it('lets the specialist pause with a trimmed reason', () => {
    spec(team())
      .when(by(user(bob), { type: 'PauseReceiving', data: { reason: ' on leave ' } }))
      .thenEmits([{ type: 'ReceivingPaused', data: { practiceId: pid, reason: 'on leave' } }])
  })

  it('omits a blank reason', () => {
    spec(team())
      .when(by(user(alice), { type: 'PauseReceiving', data: { reason: '  ' } }))
      .thenEmits([paused])
    spec(team())
      .when(by(user(alice), { type: 'PauseReceiving', data: {} }))
      .thenEmits([paused])
  })

  it('is a no-op on a paused practice', () => {
    spec([...team(), paused])
      .when(by(user(bob), { type: 'PauseReceiving', data: {} }))
      .thenEmits([])
  })

  it('rejects an over-long reason without echoing it', () => {
    const reason = 'Private'.repeat(80)
    spec(team())
      .when(by(user(bob), { type: 'PauseReceiving', data: { reason } }))
      .thenFails('practice.invalid_reason')
    const result = practiceDecider.decide(
      by(user(bob), { type: 'PauseReceiving', data: { reason } }),
      team().reduce(practiceDecider.evolve, practiceDecider.initialState),
    )
    expect(isLeft(result) && result.left.message.includes('Private')).toBe(false)
  })

  it('resumes a paused practice and is a no-op on an active one', () => {
    spec([...team(), paused])
      .when(by(user(bob), { type: 'ResumeReceiving', data: {} }))
      .thenEmits([{ type: 'ReceivingResumed', data: { practiceId: pid } }])
    spec(team())
      .when(by(user(bob), { type: 'ResumeReceiving', data: {} }))
      .thenEmits([])
  })

  it('forbids staff and applies only to specialist practices', () => {
    spec(team())
      .when(by(user(carol), { type: 'PauseReceiving', data: {} }))
      .thenFails('practice.forbidden')
    spec([...team(), paused])
      .when(by(user(carol), { type: 'ResumeReceiving', data: {} }))
      .thenFails('practice.forbidden')
    spec(team('clinic'))
      .when(by(user(alice), { type: 'PauseReceiving', data: {} }))
      .thenFails('practice.not_specialist')
    spec(team('clinic'))
      .when(by(user(alice), { type: 'ResumeReceiving', data: {} }))
      .thenFails('practice.not_specialist')
  })
})

describe('VerifyPractice / RevokeVerification', () => {
  it('lets an admin verify, idempotently', () => {
    spec(team())
      .when(by(admin, { type: 'VerifyPractice', data: {} }))
      .thenEmits([verified])
    spec([...team(), verified])
      .when(by(admin, { type: 'VerifyPractice', data: {} }))
      .thenEmits([])
  })

  it('lets an admin revoke, idempotently', () => {
    spec([...team(), verified])
      .when(by(admin, { type: 'RevokeVerification', data: {} }))
      .thenEmits([{ type: 'VerificationRevoked', data: { practiceId: pid } }])
    spec(team())
      .when(by(admin, { type: 'RevokeVerification', data: {} }))
      .thenEmits([])
  })

  it('is for platform admins only, even owners cannot', () => {
    for (const actor of [user(alice), user(bob), auditor, system]) {
      spec(team())
        .when(by(actor, { type: 'VerifyPractice', data: {} }))
        .thenFails('practice.forbidden')
      spec([...team(), verified])
        .when(by(actor, { type: 'RevokeVerification', data: {} }))
        .thenFails('practice.forbidden')
    }
  })
})

describe('recipientProfile', () => {
  const stateOf = (events: PracticeEvent[]) =>
    events.reduce(practiceDecider.evolve, practiceDecider.initialState)

  it('is null for a missing, a clinic or an unconfigured specialist practice', () => {
    expect(recipientProfile(stateOf([]))).toBeNull()
    expect(recipientProfile(stateOf(team('clinic')))).toBeNull()
    expect(recipientProfile(stateOf(team()))).toBeNull()
  })

  it('reflects settings, FTE changes, pauses and verification', () => {
    const state = stateOf([
      ...team(),
      configured,
      verified,
      paused,
      { type: 'FteChanged', data: { practiceId: pid, previous: fte(1), fte: fte(0.5) } },
    ])
    expect(recipientProfile(state)).toEqual({
      practiceId: 'p1',
      verified: true,
      status: 'paused',
      specialtyId: 'ortho',
      regions: ['north'],
      categories: [{ categoryId: 'knee' }],
      fte: 0.5,
      insuranceNetworks: ['public'],
      preferredProviderListed: false,
    })
  })
})

describe('membersOf', () => {
  it('lists members in joining order with their current role', () => {
    const events: PracticeEvent[] = [
      ...team(),
      {
        type: 'MemberRoleChanged',
        data: { practiceId: pid, userId: carol, previous: 'staff', role: 'owner' },
      },
      { type: 'MemberRemoved', data: { practiceId: pid, userId: bob, role: 'specialist' } },
    ]
    const state = events.reduce(practiceDecider.evolve, practiceDecider.initialState)
    expect(membersOf(state)).toEqual([
      { userId: 'alice', role: 'owner' },
      { userId: 'carol', role: 'owner' },
    ])
  })

  it('is empty for a missing practice', () => {
    expect(membersOf(practiceDecider.initialState)).toEqual([])
  })
})

describe('authorization matrix', () => {
  // State: configured, verified, paused specialist practice, so only authorization can fail.
  const history = [...team(), configured, verified, paused]
  const commands: readonly PracticeCommandPayload[] = [
    { type: 'AddMember', data: { userId: dave, role: 'staff' } },
    { type: 'RemoveMember', data: { userId: carol } },
    { type: 'ChangeMemberRole', data: { userId: carol, role: 'specialist' } },
    { type: 'ConfigureSpecialist', data: { ...settings, preferredProviderListed: true } },
    { type: 'ChangeFte', data: { fte: fte(0.25) } },
    { type: 'ResumeReceiving', data: {} },
    { type: 'RevokeVerification', data: {} },
  ]
  const allowed: Record<string, readonly string[]> = {
    owner: [
      'AddMember',
      'RemoveMember',
      'ChangeMemberRole',
      'ConfigureSpecialist',
      'ChangeFte',
      'ResumeReceiving',
    ],
    specialist: ['ChangeFte', 'ResumeReceiving'],
    staff: [],
    outsider: [],
    auditor: [],
    system: [],
    // Admins verify; membership and settings belong to the practice's own members.
    admin: commands.map((c) => c.type).filter((t) => t === 'VerifyPractice' || t === 'RevokeVerification'),
  }
  const actors: Record<string, Actor> = {
    owner: user(alice),
    specialist: user(bob),
    staff: user(carol),
    outsider: user(dave),
    auditor,
    system,
    admin,
  }

  for (const [who, actor] of Object.entries(actors)) {
    for (const payload of commands) {
      const expected = allowed[who]?.includes(payload.type) ? 'allowed' : 'forbidden'
      it(`${who} ${payload.type}: ${expected}`, () => {
        const result = practiceDecider.decide(
          by(actor, payload),
          history.reduce(practiceDecider.evolve, practiceDecider.initialState),
        )
        if (expected === 'allowed') expect(isLeft(result) ? result.left.code : result.right.length).toBe(1)
        else expect(isLeft(result) && result.left.code).toBe('practice.forbidden')
      })
    }
  }
})
