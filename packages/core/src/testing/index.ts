export * from './conformance.js'
export * from './given.js'
