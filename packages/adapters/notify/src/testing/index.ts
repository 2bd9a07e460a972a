export * from './smsc.js'
