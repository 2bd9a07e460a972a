declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin connection string of the test run's PostgreSQL server (see `createTestDatabase`). */
    databaseUrl: string
  }
}

/** The key under which the globalSetup provides the server's admin connection string. */
export const DATABASE_URL_KEY = 'databaseUrl' as const
