/** The wire contract (docs/protocol.md) as pure functions: parse client frames, encode server events. */
export * from './channels.js';
export * from './frames.js';
export * from './json-text.js';
export * as events from './events.js';
export type { GoodbyeReason } from './events.js';
