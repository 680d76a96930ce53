/** Opens a client socket with the driver asked for (see types.ts), and names what a run's sockets are. */
import { LibuvSocket, libuvSockets } from './libuv-socket.js';
import { NetSocket } from './net-socket.js';
import type { ClientSocket, ClientSocketDriver, SocketOwner, SocketTarget } from './types.js';

/** The driver a socket to `target` gets: `libuv` only for plain TCP on a Node that has it. */
export function driverFor(asked: ClientSocketDriver, target: { tls: boolean }): ClientSocketDriver {
  return asked === 'libuv' && libuvSockets && !target.tls ? 'libuv' : 'net';
}

export function openSocket(asked: ClientSocketDriver, target: SocketTarget, owner: SocketOwner): ClientSocket {
  return driverFor(asked, target) === 'libuv' && LibuvSocket ? new LibuvSocket(target, owner) : new NetSocket(target, owner);
}

/** What a run's client sockets are, as the summary and CSVs name them. */
export function clientSocketsLabel(asked: ClientSocketDriver, urls: readonly string[]): string {
  const tls = urls.some((url) => url.startsWith('wss:'));
  const driver = driverFor(asked, { tls: urls.every((url) => url.startsWith('wss:')) });
  const sockets = driver === 'libuv'
    ? (tls ? 'raw TCP as libuv handles (net.Socket for wss://)' : 'raw TCP as libuv handles')
    : asked === 'libuv' && !libuvSockets ? 'raw TCP as net.Socket (this Node lacks the libuv driver)' : 'raw TCP as net.Socket';
  return `${sockets}, the swarm's own handshake and framing`;
}
