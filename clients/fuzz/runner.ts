/**
 * Runs generated cases (cases.ts) against a server and checks every answer; tallies what each counter
 * of `/stats` must have grown by, so the caller can hold the server's own count against it.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { nextCase, uwsTraits, type CloseKind, type Expect, type FuzzCase, type FuzzLimits, type UwsTraits } from './cases.js';
import { Random } from './random.js';
import { frame, httpExchange, RawSocket } from './wire.js';

export interface FuzzOptions {
  /** Port of the server on 127.0.0.1. */
  port: number;
  /** Cases to run. */
  inputs: number;
  seed: number;
  limits: FuzzLimits;
  /** Cases in flight at once (each worker keeps one `/pubsub` connection for json cases). Default 16. */
  concurrency?: number;
  /**
   * Source addresses for the connections of frame and HTTP cases, in turn: 100,000 inputs open about
   * 40,000 connections, more than one address has ports for while the closed ones wait out TIME_WAIT.
   */
  sourceAddresses?: string[];
  /** Called now and then with the cases done so far. */
  onProgress?: (done: number, total: number) => void;
  /** Stops issuing cases (Ctrl-C): the cases in flight finish, and the report covers what ran. */
  signal?: AbortSignal;
}

/** What the counters of `/stats` must have grown by. */
export interface ExpectedCounters {
  errors: Record<string, number>;
  too_large: number;
  closes: Record<Exclude<CloseKind, 'too_large'>, number>;
  http_errors: Record<string, number>;
  refused: Record<string, number>;
}

export interface Mismatch {
  level: string;
  name: string;
  expected: Expect;
  got: string;
}

export interface FuzzReport {
  inputs: number;
  byLevel: Record<string, number>;
  byName: Record<string, number>;
  /** Whether `signal` stopped the run before `inputs` cases (then `inputs` is what ran). */
  interrupted: boolean;
  /** Milliseconds spent on each case name, summed (cases run `concurrency` at a time). */
  byNameMs: Record<string, number>;
  mismatches: Mismatch[];
  expected: ExpectedCounters;
  durationMs: number;
}

/**
 * The traits of the uWS build a server on 127.0.0.1:`port` runs, from its /stats `engine`. A server
 * without one (not ours) is held to 20.30's, the expectations this fuzzer had first.
 */
export async function readUwsTraits(port: number): Promise<UwsTraits> {
  const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json().catch(() => ({}))) as { engine?: { version?: string; request_head_limit?: number | null } };
  const engine = stats.engine;
  return engine?.version ? uwsTraits({ version: engine.version, request_head_limit: engine.request_head_limit ?? null }) : { headLimit: null, answersMalformed: false };
}

const ANSWER_MS = 5000;
/** How long a case that uWS ignores is given to be answered after all, before it counts as ignored. */
const SILENT_MS = 30;
const UNANSWERED_MS = 150;

const bump = (record: Record<string, number>, key: string, by = 1): void => {
  record[key] = (record[key] ?? 0) + by;
};

/** One json-level connection: sends a frame and reads the next answer that is not a subscription's message. */
class JsonLane {
  private ws: WebSocket | null = null;
  private frames: string[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  constructor(private readonly url: string) {}

  private async open(): Promise<WebSocket> {
    if (this.ws && !this.closed) return this.ws;
    const ws = new WebSocket(this.url);
    this.frames = [];
    this.closed = false;
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : String(data);
      if (text.startsWith('{"event":"message"')) return;
      this.frames.push(text);
      this.wake?.();
    });
    ws.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.ws = ws;
    await this.next(); // welcome
    return ws;
  }

  private async next(): Promise<string | null> {
    const deadline = performance.now() + ANSWER_MS;
    while (this.frames.length === 0) {
      if (this.closed || performance.now() > deadline) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - performance.now());
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.frames.shift()!;
  }

  async run(c: FuzzCase): Promise<string> {
    const ws = await this.open();
    ws.send(c.data as string | Buffer, { binary: c.binary === true });
    const answer = await this.next();
    if (answer === null) return this.closed ? 'connection closed' : 'no answer';
    const parsed = JSON.parse(answer) as { event: string; code?: string };
    return parsed.event === 'error' ? `error ${parsed.code}` : `event ${parsed.event}`;
  }

  /** Closes the connection; returns 1 when it was open (the server counts that as a normal close). */
  close(): number {
    if (!this.ws || this.closed) return 0;
    this.ws.close();
    return 1;
  }
}

/** Runs one frame-level case on a fresh connection; returns what happened, in the words of {@link describe}. */
async function runFrame(port: number, c: FuzzCase, localAddress: string | undefined): Promise<string> {
  const socket = await RawSocket.open(port, '/pubsub', localAddress);
  try {
    await socket.nextJson(ANSWER_MS); // welcome
    socket.write(c.data as Buffer);
    const expect = c.expect;
    if (expect.kind === 'silent') {
      await new Promise((resolve) => setTimeout(resolve, SILENT_MS));
      const { frames } = await socket.readUntilClose(1);
      return frames.length === 0 && !socket.socket.destroyed ? 'silent' : `answered ${frames.map((f) => f.opcode).join(',')}`;
    }
    if (expect.kind === 'closed') {
      // A close frame (uWS answers a bad close code with an empty one) or the end of the connection.
      const { frames } = await socket.readUntilClose(ANSWER_MS);
      if (!socket.socket.destroyed && !frames.some((f) => f.opcode === 0x8)) return 'still open';
      return `closed ${expect.close}`;
    }
    if (expect.kind === 'reply') {
      const match = await socket.nextFrame(expect.opcode, ANSWER_MS);
      let got = 'no answer';
      if (match) {
        got = `reply ${match.opcode}`;
        if (match.opcode === 0x1) {
          const event = JSON.parse(match.payload.toString()) as { event: string; code?: string };
          got += ` ${event.event}${event.code ? ` ${event.code}` : ''}`;
        }
      }
      socket.write(frame(0x8, Buffer.from([0x03, 0xe8])));
      const { closeCode } = await socket.readUntilClose(ANSWER_MS);
      return closeCode === 1000 ? got : `${got}, then close ${closeCode}`;
    }
    return `a frame case cannot expect ${expect.kind}`;
  } finally {
    socket.destroy();
  }
}

async function runHttp(port: number, c: FuzzCase, localAddress: string | undefined): Promise<string> {
  // uWS answers what it answers at once; what it leaves unanswered is waited for only briefly.
  const unanswered = c.expect.kind === 'unanswered' || c.expect.kind === 'uws';
  const response = await httpExchange(port, c.data as Buffer[], { waitMs: unanswered ? UNANSWERED_MS : ANSWER_MS, pauseMs: c.pauseMs, localAddress });
  if (response === null) return 'unanswered';
  return `status ${response.status}`;
}

/** Whether `got` (in the words the runners use) is the answer the case expects. */
function answers(expect: Expect, got: string): boolean {
  if (expect.kind === 'uws') return got === 'unanswered' || expect.statuses.some((status) => got === `status ${status}`);
  return got === describe(expect);
}

/** What the answer to a case must read, in the words the runners use. */
function describe(expect: Expect): string {
  switch (expect.kind) {
    case 'error':
      return `error ${expect.code}`;
    case 'event':
      return `event ${expect.event}`;
    case 'closed':
      return `closed ${expect.close}`;
    case 'reply':
      return `reply ${expect.opcode}${expect.event ? ` ${expect.event}` : ''}${expect.code ? ` ${expect.code}` : ''}`;
    case 'silent':
      return 'silent';
    case 'status':
      return `status ${expect.status}`;
    case 'unanswered':
      return 'unanswered';
    case 'uws':
      return `uws: ${expect.statuses.map((status) => `status ${status}`).join(', ')} or unanswered`;
  }
}

/** What a case, answered as expected, adds to the server's counters. */
function tally(expected: ExpectedCounters, e: Expect): void {
  switch (e.kind) {
    case 'error':
      return bump(expected.errors, e.code);
    case 'closed':
      if (e.close === 'too_large') expected.too_large++;
      else expected.closes[e.close]++;
      return;
    case 'reply':
      if (e.code) bump(expected.errors, e.code);
      expected.closes.normal++;
      return;
    case 'silent':
      expected.closes.abnormal++; // the fuzzer drops the connection
      return;
    case 'status':
      if (e.error) bump(expected.http_errors, e.error);
      if (e.refused) bump(expected.refused, e.refused);
      return;
    default:
      return;
  }
}

/** Runs `inputs` seeded cases, `concurrency` at a time; never throws for a wrong answer (see mismatches). */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const random = new Random(options.seed);
  const concurrency = options.concurrency ?? 16;
  const addresses = options.sourceAddresses ?? [];
  const report: FuzzReport = {
    inputs: 0,
    interrupted: false,
    byLevel: {},
    byName: {},
    byNameMs: {},
    mismatches: [],
    expected: { errors: {}, too_large: 0, closes: { normal: 0, abnormal: 0, invalid_utf8: 0 }, http_errors: {}, refused: {} },
    durationMs: 0,
  };
  const started = performance.now();
  let issued = 0;
  let turn = 0;
  const worker = async (): Promise<void> => {
    const lane = new JsonLane(`ws://127.0.0.1:${options.port}/pubsub`);
    try {
      while (issued < options.inputs && !options.signal?.aborted) {
        issued++;
        const c = nextCase(random, options.limits);
        const localAddress = addresses.length > 0 ? addresses[turn++ % addresses.length] : undefined;
        let got: string;
        const caseStarted = performance.now();
        try {
          if (c.level === 'json') got = await lane.run(c);
          else if (c.level === 'frame') got = await runFrame(options.port, c, localAddress);
          else got = await runHttp(options.port, c, localAddress);
        } catch (err) {
          got = `failed: ${(err as Error).message}`;
        }
        if (answers(c.expect, got)) tally(report.expected, c.expect);
        else if (got === 'unanswered' && c.expect.kind === 'status' && c.expect.orUnanswered) bump(report.byName, 'http:dropped-split-head');
        else report.mismatches.push({ level: c.level, name: c.name, expected: c.expect, got });
        report.inputs++;
        bump(report.byLevel, c.level);
        const key = `${c.level}:${c.name.split('/')[0]}`;
        bump(report.byName, key);
        bump(report.byNameMs, key, performance.now() - caseStarted);
        if (report.inputs % 1000 === 0) options.onProgress?.(report.inputs, options.inputs);
      }
    } finally {
      // The json lanes' own clean closes count as client closes too.
      report.expected.closes.normal += lane.close();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  report.durationMs = performance.now() - started;
  report.interrupted = report.inputs < options.inputs;
  return report;
}

/** Differences between the counters' growth and what the fuzzer expected, as lines; empty when they agree. */
export function counterDifferences(before: Record<string, any>, after: Record<string, any>, expected: ExpectedCounters): string[] {
  const out: string[] = [];
  const check = (name: string, grown: number, want: number): void => {
    if (grown !== want) out.push(`${name}: grew ${grown}, the fuzzer sent ${want}`);
  };
  const keys = (a: Record<string, number> = {}, b: Record<string, number> = {}, c: Record<string, number> = {}) => new Set([...Object.keys(a), ...Object.keys(b), ...Object.keys(c)]);
  for (const code of keys(before.errors, after.errors, expected.errors)) check(`errors.${code}`, (after.errors[code] ?? 0) - (before.errors[code] ?? 0), expected.errors[code] ?? 0);
  check('too_large', after.too_large - before.too_large, expected.too_large);
  for (const how of keys(before.closes, after.closes)) check(`closes.${how}`, after.closes[how] - before.closes[how], expected.closes[how as keyof ExpectedCounters['closes']] ?? 0);
  for (const code of keys(before.http_errors, after.http_errors, expected.http_errors)) {
    check(`http_errors.${code}`, (after.http_errors[code] ?? 0) - (before.http_errors[code] ?? 0), expected.http_errors[code] ?? 0);
  }
  for (const why of keys(before.refused, after.refused, expected.refused)) check(`refused.${why}`, (after.refused[why] ?? 0) - (before.refused[why] ?? 0), expected.refused[why] ?? 0);
  check('handler_errors', after.handler_errors - before.handler_errors, 0);
  return out;
}
