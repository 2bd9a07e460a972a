export * from './facts.js'
export * from './facts-index.js'
export * from './fairness.js'
export * from './reports.js'
