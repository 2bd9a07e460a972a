import { defineConfig } from 'vitest/config'

// Tests run against the TypeScript sources: the `@referrals/source` export condition maps every
// workspace package to its `src/index.ts`, so no build is needed between an edit and a test run.
const conditions = ['@referrals/source', 'import', 'node', 'default']

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@referrals/source'] } },
  test: {
    include: ['packages/**/src/**/*.test.ts', 'examples/**/*.test.ts', 'bench/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
})
