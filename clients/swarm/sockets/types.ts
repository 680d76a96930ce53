/**
 * A client's TCP connection as the swarm's Connection sees it, behind one interface with two drivers:
 * `libuv` (libuv-socket.ts: Node's TCP handle alone, about 1 KB of the swarm's memory per idle
 * connection) and `net` (net-socket.ts: a net.Socket or tls.TLSSocket, about 3.7 KB; the only one for
 * wss://). test/client-sockets-contract.test.ts runs one suite against both.
 *
 * What every driver guarantees to its owner:
 * - Events arrive as calls on the owner, never before `openSocket` has returned: `socketConnected` at
 *   most once, then `socketRead` for every chunk in order, then `socketClosed` exactly once, however the connection ended
 *   (the peer, an error, `destroy`), unless the owner let go with `abandon`.
 * - `socketFailed` reports an error (connect refused, reset, a failed write) and is always followed by
 *   `socketClosed`.
 * - The bytes `socketRead` hands over are valid only during the call: they may be a buffer every socket of the
 *   process reads into, so the owner decodes (or copies) them before it returns.
 * - `write` before `socketConnected` or after `destroy` sends nothing; writes between `cork` and `uncork` go
 *   out together in one write.
 */

/** The drivers, as --client-sockets names them. */
export const CLIENT_SOCKET_DRIVERS = ['libuv', 'net'] as const;
export type ClientSocketDriver = (typeof CLIENT_SOCKET_DRIVERS)[number];

/** What the socket calls; a connection implements it, so a socket holds no closure of its own. */
export interface SocketOwner {
  socketConnected(): void;
  socketRead(data: Buffer, length: number): void;
  socketFailed(err: SocketError): void;
  socketClosed(): void;
}

/** An error with the system's name for it (ECONNREFUSED, ...), as net's errors carry. */
export type SocketError = Error & { code?: string };

export interface ClientSocket {
  write(data: Buffer | string): void;
  cork(): void;
  uncork(): void;
  /** Ends the connection at once (no orderly shutdown); `closed` follows. */
  destroy(): void;
  /** Ends the connection at once and calls the owner no more. */
  abandon(): void;
}

/** Where to connect: the server's host and port, and optionally the local address and port to bind. */
export interface SocketTarget {
  host: string;
  port: number;
  tls: boolean;
  localAddress?: string;
  localPort?: number;
}

/**
 * Every socket of a process reads into this one buffer, and its owner decodes the bytes before the next
 * read: no Buffer per read.
 */
export const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
