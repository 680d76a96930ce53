/**
 * The `libuv` driver (see types.ts): Node's own TCP handle, the object net.Socket wraps, used without
 * the net.Socket. An idle net.Socket costs its process about 3.7 KB (its stream states, event tables and
 * the handle; measured with 15,000 idle connections), the handle alone about 1.1 KB: the difference
 * decides how many connections one swarm process holds.
 *
 * The handle is reached through `process.binding('tcp_wrap')`, which Node keeps for compatibility (it
 * is on the binding allow-list of Node 20, 22 and 24) but does not document. {@link libuvSockets} is
 * false when a member this file uses is missing, and the swarm then uses the `net` driver and says so.
 * Plain TCP only: wss:// always takes the `net` driver.
 *
 * How the handle behaves, as net.js and stream_base_commons.js use it: `connect` and each write take a
 * request object whose `oncomplete` is called when it finishes; a write that finished at once says so
 * in `streamBaseState[kLastWriteWasAsync]` and calls nothing. With `useUserBuffer`, every read lands in
 * that buffer and `onread` is called with the byte count (or a negative libuv error, UV_EOF at the end)
 * in `streamBaseState[kReadBytesOrError]`. `close` calls its callback once the handle is gone. Every
 * callback is called with the handle (or the request) as `this`, so they are shared functions.
 */
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { READ_BUFFER, type ClientSocket, type SocketError, type SocketOwner, type SocketTarget } from './types.js';

interface TcpHandle {
  onread: (this: TcpHandle) => void;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  connect(req: ConnectRequest, address: string, port: number): number;
  connect6(req: ConnectRequest, address: string, port: number): number;
  setNoDelay(on: boolean): number;
  useUserBuffer(buffer: Buffer): void;
  readStart(): number;
  writeBuffer(req: WriteRequest, data: Buffer): number;
  writeLatin1String(req: WriteRequest, data: string): number;
  close(callback: (this: TcpHandle) => void): void;
}
interface ConnectRequest {
  oncomplete: (this: ConnectRequest, status: number, handle: TcpHandle) => void;
  address: string;
  port: number;
}
interface WriteRequest {
  oncomplete: (this: WriteRequest, status: number, handle: TcpHandle) => void;
  handle: TcpHandle;
  buffer: Buffer | string | null;
  async: boolean;
}
interface Bindings {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectRequest;
  SOCKET: number;
  WriteWrap: new () => WriteRequest;
  state: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

const HANDLE_METHODS = ['bind', 'bind6', 'connect', 'connect6', 'setNoDelay', 'useUserBuffer', 'readStart', 'writeBuffer', 'writeLatin1String', 'close'];

/** Node's TCP bindings, or null where this Node lacks one of the members this file uses. */
function loadBindings(): Bindings | null {
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = binding('tcp_wrap');
    const stream = binding('stream_wrap');
    const constants = tcp.constants as Record<string, unknown> | undefined;
    const TCP = tcp.TCP as Bindings['TCP'];
    if (typeof TCP !== 'function' || typeof tcp.TCPConnectWrap !== 'function' || typeof constants?.SOCKET !== 'number') return null;
    if (typeof stream.WriteWrap !== 'function' || !(stream.streamBaseState instanceof Int32Array)) return null;
    if (typeof stream.kReadBytesOrError !== 'number' || typeof stream.kLastWriteWasAsync !== 'number') return null;
    if (!HANDLE_METHODS.every((name) => typeof (TCP.prototype as unknown as Record<string, unknown>)[name] === 'function')) return null;
    // The socket subclasses the handle (see defineSocket): one made and closed shows this Node allows it.
    new (class extends TCP {})(constants.SOCKET).close(() => undefined);
    return {
      TCP,
      TCPConnectWrap: tcp.TCPConnectWrap as Bindings['TCPConnectWrap'],
      SOCKET: constants.SOCKET,
      WriteWrap: stream.WriteWrap as Bindings['WriteWrap'],
      state: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
    };
  } catch {
    return null;
  }
}

const bindings = loadBindings();

/** libuv's end-of-stream code (UV_EOF), by its name in Node's own table. */
const UV_EOF = [...getSystemErrorMap()].find(([, [name]]) => name === 'EOF')?.[0] ?? -4095;

function socketError(status: number, what: string): SocketError {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`${what} ${code}`), { code });
}

/** What the shared callbacks below see as `this` (or are handed): the socket, which is its own handle. */
interface HandleSocket extends TcpHandle {
  sink: SocketOwner | null;
  connectDone(status: number, req: ConnectRequest): void;
  end(err: SocketError | null): void;
  handleClosed(): void;
}

function onHandleRead(this: TcpHandle): void {
  const socket = this as HandleSocket;
  const { state, kReadBytesOrError } = bindings!;
  const length = state[kReadBytesOrError];
  if (length > 0) socket.sink?.socketRead(READ_BUFFER, length);
  else if (length < 0) socket.end(length === UV_EOF ? null : socketError(length, 'read'));
}

function onConnected(this: ConnectRequest, status: number, handle: TcpHandle): void {
  (handle as HandleSocket).connectDone(status, this);
}

function onWritten(this: WriteRequest, status: number, handle: TcpHandle): void {
  this.buffer = null;
  if (status < 0) (handle as HandleSocket).end(socketError(status, 'write'));
}

function onHandleClosed(this: TcpHandle): void {
  (this as HandleSocket).handleClosed();
}

function failLater(socket: HandleSocket, err: SocketError): void {
  socket.end(err);
}

/**
 * The socket is a subclass of Node's TCP handle, not an object that holds one: the handle's callbacks
 * get it as `this` with no property added to the handle, and a connection costs one object fewer.
 */
function defineSocket(b: Bindings): new (target: SocketTarget, owner: SocketOwner) => ClientSocket {
  return class LibuvSocket extends b.TCP implements ClientSocket, HandleSocket {
    /** Null once the owner has let go (see abandon) or has heard of the close. */
    sink: SocketOwner | null;
    private isConnected = false;
    private isClosing = false;
    private corked: Buffer[] | null = null;

    constructor(target: SocketTarget, owner: SocketOwner) {
      super(b.SOCKET);
      this.sink = owner;
      this.onread = onHandleRead;
      const family = isIP(target.host);
      if (family !== 0) this.start(target, target.host, family);
      else lookup(target.host, (err, address, resolved) => {
        if (err) this.end(Object.assign(new Error(`lookup ${target.host}: ${err.message}`), { code: err.code }));
        else if (!this.isClosing) this.start(target, address, resolved);
      });
    }

    private start(target: SocketTarget, address: string, family: number): void {
      const v6 = family === 6;
      let status = 0;
      if (target.localAddress !== undefined || target.localPort !== undefined) {
        const local = target.localAddress ?? (v6 ? '::' : '0.0.0.0');
        status = v6 ? this.bind6(local, target.localPort ?? 0, 0) : this.bind(local, target.localPort ?? 0);
      }
      if (status === 0) {
        const req = new b.TCPConnectWrap();
        req.oncomplete = onConnected;
        req.address = address;
        req.port = target.port;
        status = v6 ? this.connect6(req, address, target.port) : this.connect(req, address, target.port);
      }
      // The owner hears of it after the constructor has returned, as it would of a late failure.
      if (status < 0) process.nextTick(failLater, this, socketError(status, `connect ${address}:${target.port}`));
    }

    connectDone(status: number, req: ConnectRequest): void {
      if (this.isClosing) return;
      if (status < 0) return this.end(socketError(status, `connect ${req.address}:${req.port}`));
      this.setNoDelay(true);
      this.useUserBuffer(READ_BUFFER);
      const reading = this.readStart();
      if (reading < 0) return this.end(socketError(reading, 'read'));
      this.isConnected = true;
      this.sink?.socketConnected();
    }

    write(data: Buffer | string): void {
      if (!this.isConnected) return;
      if (this.corked) {
        this.corked.push(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
        return;
      }
      const req = new b.WriteWrap();
      req.handle = this;
      req.oncomplete = onWritten;
      req.async = false;
      req.buffer = null;
      const status = typeof data === 'string' ? this.writeLatin1String(req, data) : this.writeBuffer(req, data);
      if (status < 0) return this.end(socketError(status, 'write'));
      // The kernel took part of it: the rest is sent from `data`, which must live until oncomplete.
      if (b.state[b.kLastWriteWasAsync] !== 0) {
        req.async = true;
        req.buffer = data;
      }
    }

    cork(): void {
      this.corked ??= [];
    }

    uncork(): void {
      const chunks = this.corked;
      this.corked = null;
      if (chunks && chunks.length > 0) this.write(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    }

    destroy(): void {
      this.end(null);
    }

    abandon(): void {
      this.sink = null;
      this.end(null);
    }

    /** Closes the handle once; the owner hears of `err` now and of the close when libuv has closed it. */
    end(err: SocketError | null): void {
      if (this.isClosing) return;
      if (err) this.sink?.socketFailed(err);
      if (this.isClosing) return; // the owner let go meanwhile (abandon)
      this.isClosing = true;
      this.isConnected = false;
      this.corked = null;
      this.close(onHandleClosed);
    }

    handleClosed(): void {
      const sink = this.sink;
      this.sink = null;
      sink?.socketClosed();
    }
  };
}

/** The driver's socket class, or null where this Node lacks what it needs. */
export const LibuvSocket = bindings ? defineSocket(bindings) : null;

/** Whether this Node has what the driver needs. */
export const libuvSockets = LibuvSocket !== null;
