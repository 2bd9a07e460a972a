export * from './routes.js'
export * from './settings.js'
export * from './start.js'
export * from './webhook-url.js'
