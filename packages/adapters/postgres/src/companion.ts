import type { CompanionWrite } from '@referrals/core'

/**
 * A write of another component (the HTTP idempotency completion) that the PostgreSQL event store
 * commits in the transaction of an `appendMany` (`AppendManyOptions.companions`): all or nothing
 * with the events.
 *
 * - `kind` names the database it is meant for (`postgresCompanionKind`): the store takes only its
 *   own (`capabilities.companionKinds`), so a write aimed at another database is never run here —
 *   its owner writes it apart instead.
 * - `text` is one data-modifying statement (`UPDATE`/`INSERT`/`DELETE`) whose parameters `$1…$n`
 *   are arrays, one element per row (`unnest`), and `row` is this write's element of each.
 *   Companions with the same `text` are merged into one statement (their rows concatenated).
 * - `text` must read the CTE `appended` (the append's result rows), e.g. `AND EXISTS (SELECT 1 FROM
 *   appended)`: that makes it run after the append, whose stream locks are taken before the
 *   transaction has an id (the global-order proof in `event-store.ts`).
 */
export interface PostgresCompanionWrite extends CompanionWrite {
  readonly text: string
  readonly row: readonly unknown[]
  /**
   * Rows of one statement are written in this order (JavaScript string order), so statements that
   * lock the same rows elsewhere in the same order (the idempotency group commit sorts by scope and
   * key) cannot deadlock with it.
   */
  readonly sortKey?: string
}

interface Queryable {
  query<R extends Record<string, unknown>>(text: string): Promise<{ rows: R[] }>
}

/**
 * The companion kind of the database `queryable` is connected to: server address and port, the
 * database's name and oid. Two pools opened on one connection string get the same kind.
 */
export const postgresCompanionKind = async (queryable: Queryable): Promise<string> => {
  const r = await queryable.query<{ id: string }>(
    `SELECT concat_ws(':', 'postgres', coalesce(host(inet_server_addr()), 'socket'), coalesce(inet_server_port(), 0),
              current_database(), (SELECT oid FROM pg_database WHERE datname = current_database())) AS id`,
  )
  const id = r.rows[0]?.id
  if (id === undefined) throw new Error('could not identify the database')
  return id
}

const PARAMETER = /\$(\d+)/g
const READS_APPENDED = /\bappended\b/

/** The statement text and parameters the companions add to an append: one CTE per distinct `text`. */
export const companionStatements = (
  companions: readonly PostgresCompanionWrite[],
  firstParameter: number,
): { readonly ctes: readonly string[]; readonly values: readonly unknown[] } | string => {
  const byText = new Map<string, PostgresCompanionWrite[]>()
  for (const c of companions) {
    if (typeof c.text !== 'string' || !Array.isArray(c.row)) return 'a companion write needs text and row'
    if (!READS_APPENDED.test(c.text))
      return 'a companion write must read `appended` (it runs after the append)'
    const same = byText.get(c.text) ?? []
    same.push(c)
    byText.set(c.text, same)
  }
  const ctes: string[] = []
  const values: unknown[] = []
  for (const [text, same] of byText) {
    const rows = [...same]
      .sort((a, b) =>
        (a.sortKey ?? '') < (b.sortKey ?? '') ? -1 : (a.sortKey ?? '') > (b.sortKey ?? '') ? 1 : 0,
      )
      .map((c) => c.row)
    const width = rows[0]?.length ?? 0
    if (rows.some((r) => r.length !== width)) return 'companion writes of one statement differ in width'
    const offset = firstParameter - 1 + values.length
    ctes.push(
      `companion_${ctes.length} AS (${text.replace(PARAMETER, (_, n: string) => `$${Number(n) + offset}`)})`,
    )
    for (let j = 0; j < width; j++) values.push(rows.map((r) => r[j]))
  }
  return { ctes, values }
}
