export * from './given.js'
