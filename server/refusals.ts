/** Why an upgrade is refused: the keys of `/stats` `refused` (endpoints/admission.ts and endpoints/token-gate.ts say when each happens). */
export const REFUSALS = ['shutting_down', 'handshake', 'header_too_large', 'max_connections', 'per_ip', 'unauthorized', 'origin', 'hook_failed'] as const;

export type Refusal = (typeof REFUSALS)[number];
