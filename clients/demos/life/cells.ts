/**
 * A process of Life cells (forked by bench/life.ts): one WebSocket client per cell, each subscribed to
 * its 8 neighbours' channels. A cell publishes its state of generation g, waits for its neighbours'
 * states of g, applies the rule, and publishes g + 1; no clock and no coordinator, only the messages
 * the server relays. Messages from the parent: `start` (its cells), `go`; it answers `subscribed`,
 * then `done` with its cells' final states.
 */
import WebSocket from 'ws';
import { BOARD_CHANNEL, cellChannel, firstGeneration, neighbours, nextState } from './rules.js';

export interface LifeStart {
  type: 'start';
  url: string;
  size: number;
  seed: number;
  /** Stop after this generation; 0 = go on until the parent disconnects. */
  generations: number;
  /** This process's cells: from (inclusive) to (exclusive). */
  from: number;
  to: number;
  /** Also publish each state on the board channel (for the page). */
  board: boolean;
  /** Wait this long before publishing each generation (a pace people can watch); 0 = none. */
  delayMs: number;
}

export type ToCells = LifeStart | { type: 'go' };
export type FromCells = { type: 'subscribed' } | { type: 'done'; from: number; states: number[] } | { type: 'failed'; error: string };

interface Cell {
  index: number;
  ws: WebSocket;
  alive: boolean;
  /** The generation whose state the cell holds. */
  gen: number;
  /** Neighbours' states heard per generation: how many, and how many alive. */
  heard: Map<number, { count: number; live: number }>;
}

const CONNECT_BATCH = 200;
const send = (message: FromCells): void => void process.send?.(message);
let config: LifeStart;
let cells: Cell[] = [];
let finished = 0;

process.on('message', (message: ToCells) => {
  if (message.type === 'start') void start(message).catch((err: Error) => send({ type: 'failed', error: err.message }));
  else for (const cell of cells) publish(cell);
});
process.on('disconnect', () => process.exit(0));

async function start(message: LifeStart): Promise<void> {
  config = message;
  const first = firstGeneration(config.size, config.seed);
  for (let i = config.from; i < config.to; i += CONNECT_BATCH) {
    const batch = [];
    for (let index = i; index < Math.min(config.to, i + CONNECT_BATCH); index++) batch.push(open(index, first[index] === 1));
    cells.push(...(await Promise.all(batch)));
  }
  send({ type: 'subscribed' });
}

/** Connects a cell and subscribes it to its neighbours; resolves once every subscribe is acked. */
function open(index: number, alive: boolean): Promise<Cell> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${config.url}/pubsub`);
    const cell: Cell = { index, ws, alive, gen: 0, heard: new Map() };
    let acks = 0;
    ws.on('error', reject);
    ws.on('close', (code) => {
      if (cell.gen !== config.generations || config.generations === 0) send({ type: 'failed', error: `cell ${index}: connection closed (${code}) at generation ${cell.gen}` });
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as { event: string; channel?: string; message?: { g: number; a: number } };
      if (frame.event === 'welcome') {
        for (const n of neighbours(index, config.size)) ws.send(`{"action":"subscribe","payload":{"channel":"${cellChannel(n)}"},"id":${n}}`);
      } else if (frame.event === 'subscribed') {
        if (++acks === 8) resolve(cell);
      } else if (frame.event === 'message' && frame.message) {
        hear(cell, frame.message.g, frame.message.a);
      } else if (frame.event === 'error') {
        reject(new Error(`cell ${index}: ${String(data)}`));
      }
    });
  });
}

function publish(cell: Cell): void {
  const state = `{"g":${cell.gen},"a":${cell.alive ? 1 : 0}}`;
  const go = (): void => {
    if (cell.ws.readyState !== WebSocket.OPEN) return;
    cell.ws.send(`{"action":"publish","payload":{"channel":"${cellChannel(cell.index)}","message":${state}}}`);
    if (config.board) cell.ws.send(`{"action":"publish","payload":{"channel":"${BOARD_CHANNEL}","message":{"i":${cell.index},"g":${cell.gen},"a":${cell.alive ? 1 : 0}}}}`);
  };
  if (config.delayMs > 0 && cell.gen > 0) setTimeout(go, config.delayMs);
  else go();
}

/** A neighbour's state of generation g; once all 8 of the cell's generation are in, the cell steps. */
function hear(cell: Cell, g: number, alive: number): void {
  let heard = cell.heard.get(g);
  if (!heard) cell.heard.set(g, (heard = { count: 0, live: 0 }));
  heard.count++;
  heard.live += alive;
  for (;;) {
    const now = cell.heard.get(cell.gen);
    if (!now || now.count < 8) return;
    cell.heard.delete(cell.gen);
    cell.alive = nextState(cell.alive, now.live);
    cell.gen++;
    if (config.generations > 0 && cell.gen === config.generations) return finish();
    publish(cell);
  }
}

function finish(): void {
  if (++finished < cells.length) return;
  send({ type: 'done', from: config.from, states: cells.map((c) => (c.alive ? 1 : 0)) });
}
