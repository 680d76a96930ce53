/**
 * A run as stages (`--stage 30s:0->5000 --stage 60s:5000 --stage 10s:5000->0`, or `--stages FILE`),
 * in one of two models, as load testers have them:
 *
 * - concurrency (closed model, k6's ramping VUs): `D:A->B` moves the number of clients running at once
 *   linearly from A to B over D; a client whose scenario ends starts it again (its next iteration)
 *   while the target still counts it, and one the target no longer counts finishes its iteration and
 *   stops. Clients are virtual users: `--clients` is the highest target.
 * - arrivals (open model, k6's ramping arrival rate): `D:A->B/s` starts new clients at a rate moving
 *   linearly from A to B per second, each running the scenario once, however many are still running:
 *   a slow server gets more clients at once, not fewer requests. `--clients` is every arrival.
 *
 * `D:B` (or `D:B/s`) goes from where the stage before ended (0 for the first) to B: `60s:5000` after a
 * ramp to 5000 holds it. Durations are `1.5s`, `2m`, `500ms`. Everything here is pure: the engine, the
 * workers and the outputs derive the same schedule from the same texts.
 */
export const STAGE_MODELS = ['concurrency', 'arrivals'] as const;
export type StageModel = (typeof STAGE_MODELS)[number];

export interface Stage {
  durationS: number;
  /** Clients running at once (concurrency) or new clients per second (arrivals), at the stage's start and end. */
  from: number;
  to: number;
}

export interface Schedule {
  model: StageModel;
  stages: Stage[];
  /** All stages together, seconds. */
  durationS: number;
}

const STAGE = /^\s*(\d+(?:\.\d+)?)(ms|s|m)\s*:\s*(?:(\d+(?:\.\d+)?)\s*->\s*)?(\d+(?:\.\d+)?)\s*(\/s)?\s*$/;
/** The longest run a schedule may describe, seconds (a day), and the most clients it may start. */
const MAX_DURATION_S = 86_400;
export const MAX_SCHEDULED_CLIENTS = 1_000_000;

/** One stage's text, canonical: `30s:0->5000`, `10s:0->200/s`. */
export function stageText(stage: Stage, model: StageModel): string {
  return `${Number(stage.durationS.toFixed(3))}s:${stage.from}->${stage.to}${model === 'arrivals' ? '/s' : ''}`;
}

/** Whether a run's (canonical) stages are concurrency stages: clients are virtual users running their scenario again and again. */
export function runsVirtualUsers(stages: readonly string[]): boolean {
  return stages.length > 0 && !stages[0].endsWith('/s');
}

/** Whether `text` is a stage by itself (its `from` may still depend on the stage before). */
export function isStage(text: string): boolean {
  return STAGE.test(text);
}

/** The schedule of stage texts, in order; throws a RangeError saying what is wrong. */
export function parseStages(texts: readonly string[]): Schedule {
  let model: StageModel | null = null;
  let previous = 0;
  const stages = texts.map((text) => {
    const match = STAGE.exec(text);
    if (!match) throw new RangeError(`${JSON.stringify(text)} is not <duration>:<from>-><to> or <duration>:<to> (clients at once), with /s for new clients per second; e.g. 30s:0->5000, 60s:5000, 1m:0->200/s`);
    const [, amount, unit, from, to, perSecond] = match;
    const stageModel: StageModel = perSecond ? 'arrivals' : 'concurrency';
    if (model !== null && stageModel !== model) throw new RangeError(`${JSON.stringify(text)}: every stage of a run is of one model; ${model === 'arrivals' ? 'the stages before give new clients per second (/s)' : 'the stages before give clients at once (no /s)'}`);
    model = stageModel;
    const durationS = Number(amount) * (unit === 'ms' ? 0.001 : unit === 'm' ? 60 : 1);
    const stage = { durationS, from: from === undefined ? previous : Number(from), to: Number(to) };
    if (durationS <= 0) throw new RangeError(`${JSON.stringify(text)}: a stage lasts more than 0 s`);
    if (stageModel === 'concurrency' && (!Number.isInteger(stage.from) || !Number.isInteger(stage.to))) throw new RangeError(`${JSON.stringify(text)}: clients at once are whole numbers`);
    previous = stage.to;
    return stage;
  });
  if (model === null) throw new RangeError('no stages given');
  const schedule: Schedule = { model, stages, durationS: stages.reduce((sum, s) => sum + s.durationS, 0) };
  if (schedule.durationS > MAX_DURATION_S) throw new RangeError(`the stages last ${Math.round(schedule.durationS)} s, more than a day`);
  const clients = scheduledClients(schedule);
  if (clients < 1) throw new RangeError('the stages start no client');
  if (clients > MAX_SCHEDULED_CLIENTS) throw new RangeError(`the stages start ${Math.round(clients)} clients, more than ${MAX_SCHEDULED_CLIENTS}`);
  return schedule;
}

/**
 * The stages of a JSON or YAML file: a list of `{ duration: "30s", target: 5000 }` (clients at once)
 * or `{ duration: "30s", rate: 200 }` (new clients per second), each with an optional `from`; or an
 * object with that list under `stages`. Returned as stage texts.
 */
export function stagesOfDocument(document: unknown): string[] {
  const list = Array.isArray(document) ? document : (document as { stages?: unknown } | null)?.stages;
  if (!Array.isArray(list) || list.length === 0) throw new RangeError('must hold a list of stages (or { stages: [...] }), each { duration: "30s", target: 5000 } or { duration: "30s", rate: 200 }');
  return list.map((entry, i) => {
    const { duration, target, rate, from } = (entry ?? {}) as Record<string, unknown>;
    const to = target ?? rate;
    if (typeof duration !== 'string' || typeof to !== 'number' || (target !== undefined && rate !== undefined) || (from !== undefined && typeof from !== 'number')) {
      throw new RangeError(`stage ${i + 1} must be { duration: "30s", target: <clients at once> } or { duration: "30s", rate: <new clients per second> }, with an optional numeric from (got ${JSON.stringify(entry)})`);
    }
    return `${duration}:${from === undefined ? '' : `${from}->`}${to}${rate !== undefined ? '/s' : ''}`;
  });
}

/** The schedule of a run's (validated) stage texts; null for a run without stages. */
export function scheduleOf(stages: readonly string[]): Schedule | null {
  return stages.length > 0 ? parseStages(stages) : null;
}

/** The stage running at `t` seconds from the start (the last one once all are over), and its index. */
export function stageAt(schedule: Schedule, t: number): { index: number; stage: Stage; into: number } {
  let begun = 0;
  for (let index = 0; index < schedule.stages.length; index++) {
    const stage = schedule.stages[index];
    if (t < begun + stage.durationS || index === schedule.stages.length - 1) return { index, stage, into: Math.min(Math.max(0, t - begun), stage.durationS) };
    begun += stage.durationS;
  }
  throw new RangeError('a schedule has stages');
}

/** Clients at once (concurrency) or new clients per second (arrivals) the stages ask for at `t` s; 0 after the last. */
export function targetAt(schedule: Schedule, t: number): number {
  if (t >= schedule.durationS) return 0;
  const { stage, into } = stageAt(schedule, t);
  return stage.from + ((stage.to - stage.from) * into) / stage.durationS;
}

/** The clients a run with this schedule has: the highest target (concurrency), or every arrival. */
export function scheduledClients(schedule: Schedule): number {
  if (schedule.model === 'concurrency') return Math.max(...schedule.stages.flatMap((s) => [s.from, s.to]));
  return Math.floor(schedule.stages.reduce((sum, s) => sum + ((s.from + s.to) / 2) * s.durationS, 0) + 1e-9);
}

/**
 * Seconds from the start at which arrival `i` (0-based) is due: where the arrivals so far, the integral
 * of a rate linear in each stage, reach i. A constant rate r gives i / r, as a plain ramp spaces them.
 */
export function arrivalAt(schedule: Schedule, i: number): number {
  let begun = 0;
  let before = 0;
  for (const { durationS: d, from: a, to: b } of schedule.stages) {
    const inStage = ((a + b) / 2) * d;
    if (i < before + inStage) {
      const n = i - before;
      // a t + (b - a) t^2 / 2d = n, the root in [0, d].
      const t = a === b ? n / a : (-a + Math.sqrt(a * a + (2 * (b - a) * n) / d)) / ((b - a) / d);
      return begun + Math.min(d, Math.max(0, t));
    }
    before += inStage;
    begun += d;
  }
  return schedule.durationS;
}
