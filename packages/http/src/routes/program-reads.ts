import {
  type CommandFailure,
  decodeStored,
  type EventStore,
  type GlobalPosition,
  type IntakeEvent,
  intakeAggregate,
  type PracticeId,
  type ProgramId,
  programAggregate,
  programIdFromStreamId,
  redactingSealer,
  type StoredEvent,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'

/**
 * What the program read routes need from other streams, read straight from the store on each
 * request (in global order, page by page): the programs of a practice (`program-` streams) and
 * the intake events of a program (`intake-` streams). Intakes are decoded with a redacting sealer,
 * so no key is touched and no PHI is ever opened. Every read scans its prefix: correct and simple,
 * at a cost that grows with the number of intakes (a catch-up read model is the next step).
 */

const PAGE = 500

const scan = async (
  store: EventStore,
  prefix: string,
  visit: (stored: StoredEvent) => Promise<E.Either<CommandFailure, void>>,
): Promise<E.Either<CommandFailure, void>> => {
  let after: GlobalPosition | undefined
  for (;;) {
    const page = await store.readAll({
      streamPrefixes: [prefix],
      maxCount: PAGE,
      ...(after === undefined ? {} : { after }),
    })()
    if (E.isLeft(page)) return page
    for (const stored of page.right) {
      const visited = await visit(stored)
      if (E.isLeft(visited)) return visited
    }
    const last = page.right.at(-1)
    if (last === undefined || page.right.length < PAGE) return E.right(undefined)
    after = last.globalPosition
  }
}

const ok = E.right(undefined)

/** The ids of the programs of a practice, oldest first. */
export const programsOfPractice = async (
  store: EventStore,
  practiceId: PracticeId,
): Promise<E.Either<CommandFailure, readonly ProgramId[]>> => {
  const ids: ProgramId[] = []
  const scanned = await scan(store, 'program-', async (stored) => {
    if (stored.type !== 'ProgramCreated') return ok
    const programId = programIdFromStreamId(stored.streamId)
    if (programId === null) return ok
    const decoded = await decodeStored(programAggregate, stored)
    if (E.isLeft(decoded)) return decoded
    if (decoded.right.type === 'ProgramCreated' && decoded.right.data.practiceId === practiceId)
      ids.push(programId)
    return ok
  })
  return E.isLeft(scanned) ? scanned : E.right(ids)
}

const intakeReader = { ...intakeAggregate(), sealer: redactingSealer() }

/**
 * Every event of the intakes that opened a link of `programId`, in store order (each intake
 * stream starts with `ReferralLinkOpened`, which names the program): the input of `projectFunnel`.
 */
export const intakeEventsOfProgram = async (
  store: EventStore,
  programId: ProgramId,
): Promise<E.Either<CommandFailure, readonly IntakeEvent[]>> => {
  const ofProgram = new Set<string>()
  const events: IntakeEvent[] = []
  const scanned = await scan(store, 'intake-', async (stored) => {
    if (stored.type !== 'ReferralLinkOpened' && !ofProgram.has(stored.streamId)) return ok
    const decoded = await decodeStored(intakeReader, stored)
    if (E.isLeft(decoded)) return decoded
    const event = decoded.right
    if (event.type === 'ReferralLinkOpened') {
      if (event.data.programId !== programId) return ok
      ofProgram.add(stored.streamId)
    }
    events.push(event)
    return ok
  })
  return E.isLeft(scanned) ? scanned : E.right(events)
}
