export * from './conformance.js'
export * from './given.js'
export * from './world.js'
