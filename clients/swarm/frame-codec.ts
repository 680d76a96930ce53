/**
 * The WebSocket framing a client needs (RFC 6455 section 5), pure: encode a client's masked frames, and
 * decode a server's frames from a byte stream in whatever chunks TCP hands over. The swarm uses it on raw
 * sockets instead of the `ws` client: per client sequence the ws client object, its http.ClientRequest
 * upgrade and its stream plumbing cost the swarm more CPU than the frames themselves.
 *
 * No extension is ever negotiated, so RSV bits are an error; a server must not mask; control frames are
 * whole and at most 125 bytes; data frames may be fragmented and are joined here.
 */
import { randomFillSync } from 'node:crypto';

export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/**
 * Mask keys come from one pool of random bytes refilled 8 KiB at a time: a key per frame from the
 * kernel's generator would be a syscall per frame. A masking key only has to be unpredictable to
 * whoever sees the wire before the server (RFC 6455 10.3); a pool of crypto-random bytes is.
 */
const POOL_BYTES = 8192;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolAt = POOL_BYTES;

function maskInto(frame: Buffer, at: number, length: number): void {
  if (poolAt + 4 > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const m0 = pool[poolAt];
  const m1 = pool[poolAt + 1];
  const m2 = pool[poolAt + 2];
  const m3 = pool[poolAt + 3];
  poolAt += 4;
  frame[at - 4] = m0;
  frame[at - 3] = m1;
  frame[at - 2] = m2;
  frame[at - 1] = m3;
  const end = at + length;
  let i = at;
  for (; i + 3 < end; i += 4) {
    frame[i] ^= m0;
    frame[i + 1] ^= m1;
    frame[i + 2] ^= m2;
    frame[i + 3] ^= m3;
  }
  for (let k = 0; i < end; i++, k++) frame[i] ^= k === 0 ? m0 : k === 1 ? m1 : m2;
}

/** One whole (FIN) masked client frame: a text frame of `text`, or `opcode` with `payload`. */
export function encodeFrame(opcode: number, payload: string | Buffer): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const at = 2 + extended + 4;
  const frame = Buffer.allocUnsafe(at + length);
  frame[0] = 0x80 | opcode;
  if (extended === 0) frame[1] = 0x80 | length;
  else if (extended === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  if (typeof payload === 'string') frame.write(payload, at);
  else payload.copy(frame, at);
  maskInto(frame, at, length);
  return frame;
}

/** A close frame with `code` (and no reason). */
export function encodeClose(code: number): Buffer {
  const body = Buffer.allocUnsafe(2);
  body.writeUInt16BE(code, 0);
  return encodeFrame(OPCODE.close, body);
}

/**
 * What the decoder hands on. A text frame comes as bytes `start` to `end` of `data`, valid only during
 * the call (the reader reuses its buffer): most are turned into a string, but a broadcast subscriber
 * only looks for two fields in each and saves decoding and allocating a string per copy.
 */
/**
 * Where decoded frames go. The names are a sink's own (frameText, not text), so that a connection can be
 * its own sink, one object per client instead of an object of closures.
 */
export interface FrameSink {
  frameText(data: Buffer, start: number, end: number): void;
  frameBinary(data: Buffer): void;
  frameClose(code: number, reason: string): void;
  framePing(payload: Buffer): void;
  /** The stream broke the protocol; nothing more is decoded. */
  frameError(message: string): void;
}

/** Decodes a server's frames from consecutive chunks of its byte stream. */
export class FrameDecoder {
  private pending: Buffer | null = null;
  /** A fragmented message's parts so far; null between messages (an empty array per client would cost more than it). */
  private fragments: Buffer[] | null = null;
  private fragmentOpcode = 0;
  private fragmentBytes = 0;
  private failed = false;

  constructor(
    private readonly sink: FrameSink,
    /** The largest message accepted, bytes. */
    private readonly maxPayload = 64 * 1024 * 1024,
  ) {}

  /** Decodes bytes 0 to `length` of `chunk`; the frames in it are handed on before this returns. */
  push(chunk: Buffer, length = chunk.length): void {
    if (this.failed) return;
    const buf = this.pending ? Buffer.concat([this.pending, chunk.subarray(0, length)]) : chunk;
    const size = this.pending ? buf.length : length;
    this.pending = null;
    let at = 0;
    while (!this.failed) {
      const left = size - at;
      if (left < 2) break;
      const b0 = buf[at];
      const b1 = buf[at + 1];
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) {
        if (left < 4) break;
        length = buf.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (left < 10) break;
        const high = buf.readUInt32BE(at + 2);
        if (high > 0x1fffff) return this.fail('frame length beyond 2^53');
        length = high * 2 ** 32 + buf.readUInt32BE(at + 6);
        header = 10;
      }
      if (b0 & 0x70) return this.fail('RSV bits set but no extension was negotiated');
      if (b1 & 0x80) return this.fail('a server frame is masked');
      if (length > this.maxPayload) return this.fail(`frame of ${length} bytes above the limit of ${this.maxPayload}`);
      if (left < header + length) break;
      const start = at + header;
      at = start + length;
      this.frame(b0 & 0x80, b0 & 0x0f, buf, start, at);
    }
    // A partial frame waits for the next chunk; copied, since the chunk's memory is Node's to reuse.
    if (at < size && !this.failed) this.pending = Buffer.from(buf.subarray(at, size));
  }

  private frame(fin: number, opcode: number, buf: Buffer, start: number, end: number): void {
    const sink = this.sink;
    if (opcode === OPCODE.text && fin && this.fragmentOpcode === 0) return sink.frameText(buf, start, end); // the common case first
    const payload = buf.subarray(start, end);
    if (opcode >= 8) {
      if (!fin || payload.length > 125) return this.fail('a control frame is fragmented or longer than 125 bytes');
      if (opcode === OPCODE.close) {
        if (payload.length === 1) return this.fail('a close frame with a 1-byte body');
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        return sink.frameClose(code, payload.length > 2 ? payload.toString('utf8', 2) : '');
      }
      if (opcode === OPCODE.ping) return sink.framePing(Buffer.from(payload));
      if (opcode === OPCODE.pong) return;
      return this.fail(`unknown control opcode ${opcode}`);
    }
    if (opcode === OPCODE.continuation) {
      if (this.fragmentOpcode === 0) return this.fail('a continuation frame without a message to continue');
      this.fragmentBytes += payload.length;
      if (this.fragmentBytes > this.maxPayload) return this.fail(`message above the limit of ${this.maxPayload} bytes`);
      (this.fragments ??= []).push(Buffer.from(payload));
      if (!fin) return;
      const whole = Buffer.concat(this.fragments);
      const kind = this.fragmentOpcode;
      this.fragments = null;
      this.fragmentOpcode = 0;
      this.fragmentBytes = 0;
      return kind === OPCODE.text ? sink.frameText(whole, 0, whole.length) : sink.frameBinary(whole);
    }
    if (opcode !== OPCODE.text && opcode !== OPCODE.binary) return this.fail(`unknown data opcode ${opcode}`);
    if (this.fragmentOpcode !== 0) return this.fail('a new message began before the fragmented one ended');
    if (!fin) {
      this.fragmentOpcode = opcode;
      this.fragmentBytes = payload.length;
      this.fragments = [Buffer.from(payload)];
      return;
    }
    if (opcode === OPCODE.text) sink.frameText(buf, start, end);
    else sink.frameBinary(payload);
  }

  private fail(message: string): void {
    this.failed = true;
    this.pending = null;
    this.sink.frameError(message);
  }
}
