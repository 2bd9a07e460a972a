import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestProject } from 'vitest/node'
import { startEmbeddedPostgres } from '../embedded.js'
import { DATABASE_URL_KEY } from './provided.js'

/**
 * Vitest globalSetup: one PostgreSQL server for the whole run. Uses `DATABASE_URL` when set;
 * otherwise starts an embedded server in a fresh temporary directory (durability settings off:
 * the cluster is thrown away) and removes it at the end.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fromEnv = process.env.DATABASE_URL
  if (fromEnv !== undefined && fromEnv !== '') {
    project.provide(DATABASE_URL_KEY, fromEnv)
    return async () => undefined
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), 'referrals-test-pg-'))
  const server = await startEmbeddedPostgres({
    dataDir,
    database: 'referrals_test',
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '400' },
  })
  project.provide(DATABASE_URL_KEY, server.connectionString)
  return async () => {
    await server.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}
