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

/** The ids of the programs of a practice (undefined: of every practice), oldest first. */
export const programsOfPractice = async (
  store: EventStore,
  practiceId: PracticeId | undefined,
): Promise<E.Either<CommandFailure, readonly ProgramId[]>> => {
  const ids: ProgramId[] = []
  const scanned = await scan(store, 'program-', async (stored) => {
    if (stored.type !== 'ProgramCreated') return ok
    const programId = programIdFromStreamId(stored.streamId)
    if (programId === null) return ok
    const decoded = await decodeStored(programAggregate, stored)
    if (E.isLeft(decoded)) return decoded
    if (
      decoded.right.type === 'ProgramCreated' &&
      (practiceId === undefined || decoded.right.data.practiceId === practiceId)
    )
      ids.push(programId)
    return ok
  })
  return E.isLeft(scanned) ? scanned : E.right(ids)
}

const intakeReader = { ...intakeAggregate(), sealer: redactingSealer() }

/**
 * Every event of the intakes that opened a link of one of `programIds`, per program, in store
 * order (each intake stream starts with `ReferralLinkOpened`, which names the program): the input
 * of `projectFunnel`. One scan of the intake streams, however many programs are asked for.
 */
export const intakeEventsOfPrograms = async (
  store: EventStore,
  programIds: readonly ProgramId[],
): Promise<E.Either<CommandFailure, ReadonlyMap<ProgramId, readonly IntakeEvent[]>>> => {
  const wanted = new Set<string>(programIds)
  const programOfStream = new Map<string, ProgramId>()
  const events = new Map<ProgramId, IntakeEvent[]>(programIds.map((id) => [id, []]))
  const scanned = await scan(store, 'intake-', async (stored) => {
    if (stored.type !== 'ReferralLinkOpened' && !programOfStream.has(stored.streamId)) return ok
    const decoded = await decodeStored(intakeReader, stored)
    if (E.isLeft(decoded)) return decoded
    const event = decoded.right
    if (event.type === 'ReferralLinkOpened' && !programOfStream.has(stored.streamId)) {
      if (!wanted.has(event.data.programId)) return ok
      programOfStream.set(stored.streamId, event.data.programId)
    }
    const programId = programOfStream.get(stored.streamId)
    if (programId !== undefined) events.get(programId)?.push(event)
    return ok
  })
  return E.isLeft(scanned) ? scanned : E.right(events)
}

/** Every event of the intakes that opened a link of `programId`, in store order. */
export const intakeEventsOfProgram = async (
  store: EventStore,
  programId: ProgramId,
): Promise<E.Either<CommandFailure, readonly IntakeEvent[]>> => {
  const read = await intakeEventsOfPrograms(store, [programId])
  return E.isLeft(read) ? read : E.right(read.right.get(programId) ?? [])
}
