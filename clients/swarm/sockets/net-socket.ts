/**
 * The `net` driver (see types.ts): a net.Socket, or a tls.TLSSocket for wss://. Plain sockets read into
 * the shared buffer (net's `onread`); its listeners are shared by every socket and find their socket
 * through a symbol, so a socket holds no closures of its own.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { READ_BUFFER, type ClientSocket, type SocketError, type SocketOwner, type SocketTarget } from './types.js';

const OWNER = Symbol('owner');
type OwnedSocket = Socket & { [OWNER]: SocketOwner };

function onRead(this: OwnedSocket, length: number): boolean {
  this[OWNER].socketRead(READ_BUFFER, length);
  return true;
}
function onData(this: OwnedSocket, chunk: Buffer): void {
  this[OWNER].socketRead(chunk, chunk.length);
}
function onConnect(this: OwnedSocket): void {
  this[OWNER].socketConnected();
}
function onError(this: OwnedSocket, err: SocketError): void {
  this[OWNER].socketFailed(err);
}
function onClose(this: OwnedSocket): void {
  this[OWNER].socketClosed();
}
const ignore = (): void => undefined;

export class NetSocket implements ClientSocket {
  private readonly socket: OwnedSocket;

  constructor(target: SocketTarget, owner: SocketOwner) {
    const options = { host: target.host, port: target.port, localAddress: target.localAddress, localPort: target.localPort, noDelay: true };
    this.socket = (target.tls
      ? tlsConnect({ ...options, servername: target.host })
      : netConnect({ ...options, onread: { buffer: READ_BUFFER, callback: onRead } })) as OwnedSocket;
    this.socket[OWNER] = owner;
    if (target.tls) this.socket.on('data', onData);
    this.socket.on('error', onError);
    this.socket.once(target.tls ? 'secureConnect' : 'connect', onConnect);
    this.socket.once('close', onClose);
  }

  write(data: Buffer | string): void {
    // net would queue a write before the connect; the contract is that it sends nothing.
    if (!this.socket.connecting && !this.socket.destroyed) this.socket.write(data);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  destroy(): void {
    this.socket.destroy();
  }

  abandon(): void {
    this.socket.removeAllListeners();
    this.socket.on('error', ignore);
    this.socket.destroy();
  }
}
