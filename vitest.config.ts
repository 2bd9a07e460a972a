import { defineConfig } from 'vitest/config'

// Tests run against the TypeScript sources: the `@referrals/source` export condition maps every
// workspace package to its `src/index.ts`, so no build is needed between an edit and a test run.
const conditions = ['@referrals/source', 'import', 'node', 'default']

export default defineConfig({
  resolve: { conditions },
  // Vitest passes ssr conditions to Node as `--conditions` flags; `import` there would make Node's
  // own `require()` pick ESM entries of dual packages (pg → pg-pool breaks), so it is left out.
  ssr: {
    resolve: {
      conditions: conditions.filter((c) => c !== 'import'),
      externalConditions: ['@referrals/source'],
    },
  },
  test: {
    include: ['packages/**/src/**/*.test.ts', 'examples/**/*.test.ts', 'bench/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One PostgreSQL server for the whole run (DATABASE_URL, or an embedded one in a temp dir);
    // test files get their own database from `createTestDatabase()` (@referrals/postgres/testing).
    globalSetup: ['packages/adapters/postgres/src/testing/global-setup.ts'],
    reporters: ['default'],
  },
})
