/** The protocols by name (see types.ts). */
import { contract } from './contract.js';
import { raw } from './raw.js';
import { socketio } from './socketio.js';
import type { Protocol, ProtocolName } from './types.js';

export { PROTOCOLS, type FrameKind, type Protocol, type ProtocolName } from './types.js';

export const PROTOCOL_ADAPTERS: Readonly<Record<ProtocolName, Protocol>> = { contract, raw, socketio };
