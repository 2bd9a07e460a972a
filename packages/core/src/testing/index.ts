export * from './conformance.js'
export * from './counting-store.js'
export * from './given.js'
export * from './world.js'
