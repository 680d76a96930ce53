/**
 * A swarm worker process: runs its share of the clients (every `workers`-th, by global index), each
 * through the scenario, and reports counters and interval histograms to the engine. It stays well under
 * the 20,000 open-files limit because the engine gives it at most 18,000 clients.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { withToken } from './tokens.js';
import { Connection } from './connection.js';
import type { FromWorker, StartMessage, ToWorker } from './ipc.js';
import {
  SwarmError, emptyCounters, encodeHistograms, newHistogramSet, nowMicros, record, recordLate, resetHistograms, warmUpHistogramCode,
  type Counters, type HistogramSet,
} from './metrics.js';
import { FIRST_SOURCE_PORT, builtInScenario, scenarioUrls } from './options.js';
import { NamedMetrics } from './named-metrics.js';
import { userScenario } from './user/context.js';
import type { DataRow } from './user/data.js';
import { arrivalAt, scheduleOf, targetAt, type Schedule } from './stages.js';
import { Pacer } from './pacer.js';
import { Alarms, type Alarm } from './alarms.js';
import type { BarrierWaiter } from './client-context.js';
import { SCENARIO_RUNNERS, type ClientContext, type Scenario, type SlowSample } from './scenarios/index.js';
import { lowerHelperThreads } from '../host/thread-priority.js';

const MAX_ERROR_SAMPLES = 5;
/** How often concurrency stages start the virtual users their target counts, ms. */
const VIRTUAL_USER_CHECK_MS = 50;
/** Error names a worker counts its user scenario's throws under; later names count as `(other names)`. */
const MAX_THROWN_NAMES = 50;
/** A full GC (40 MB of heap, 5,000 sockets) takes 20-50 ms here; it runs only this far from the next due round. */
const IDLE_GC_MARGIN_MS = 500;
/** How often the event-loop delay is sampled, ms. */
const LOOP_DELAY_RESOLUTION_MS = 10;

/**
 * One client's context: its own figures as fields, everything else asked of its worker through methods
 * on the prototype, so a client holds one small object while it sleeps, not an object of closures.
 */
class Client implements ClientContext {
  /** It reached the barrier (or the worker must count it there when it ends). */
  reachedBarrier = false;

  constructor(
    private readonly worker: Worker,
    readonly index: number,
    readonly slot: number,
    readonly url: string,
    readonly iteration: number,
  ) {}

  get options(): ClientContext['options'] {
    return this.worker.options;
  }

  get counters(): Counters {
    return this.worker.counters;
  }

  get histograms(): HistogramSet {
    return this.worker.histograms;
  }

  get samples(): SlowSample[] {
    return this.worker.samples;
  }

  get metrics(): NamedMetrics {
    return this.worker.metrics;
  }

  get data(): DataRow | null {
    return this.worker.dataOf(this.index);
  }

  connect(url?: string): Promise<Connection> {
    return this.worker.connect(this.index, url);
  }

  barrier(): Promise<number> {
    this.reachedBarrier = true;
    return this.worker.passBarrier();
  }

  whenReleased(waiter: BarrierWaiter): void {
    this.reachedBarrier = true;
    this.worker.waitAtBarrier(waiter);
  }

  wakeAt(alarm: Alarm): void {
    this.worker.addSleeper(alarm);
  }

  get barrierAllowed(): boolean {
    return this.worker.schedule?.model !== 'concurrency';
  }

  sleep(ms: number): Promise<void> {
    return this.worker.sleep(ms);
  }

  sleepUntil(at: number): Promise<void> {
    return this.worker.sleep(Math.max(0, at - Date.now()));
  }

  pace(at: number): Promise<void> {
    return this.worker.pace(at);
  }
}

class Worker {
  readonly counters: Counters = emptyCounters();
  readonly histograms: HistogramSet = newHistogramSet();
  readonly samples: SlowSample[] = [];
  readonly metrics = new NamedMetrics();
  /** What a user scenario's code threw, by error name (`TypeError`), so far. */
  readonly thrown: Record<string, number> = {};
  readonly errorSamples: string[] = [];
  /** What each client runs; null until {@link prepare} has it (a user scenario is imported). */
  private scenario: Scenario | null = null;
  /** Why the user scenario or its data could not be loaded: each client fails with it. */
  private loadFailure: string | null = null;
  private rows: DataRow[] | null = null;
  private readonly connections = new Set<Connection>();
  private readonly pacer = new Pacer();
  /** Clients waiting for a moment: rounds due later. */
  private readonly sleepers = new Alarms();
  /** The ramp's end has had its chance to collect (once: a later reconnect must not pause a running load). */
  private rampCollected = false;
  /** {@link activity} at the last idle collection; -1 before the first. */
  private collectedAt = -1;
  /** The idle collection scheduled half-way into a gap, if one is. */
  private idleCollection: NodeJS.Timeout | null = null;
  private readonly urls: string[];
  private readonly ownClients: number;
  /** Milliseconds between consecutive clients' connects (all workers together), without stages. */
  private readonly spacing: number;
  /** The run's stages (stages.ts), if it has them. */
  readonly schedule: Schedule | null;
  /** Concurrency stages: the virtual users of this worker running now, and whether the stages are over. */
  private running = 0;
  private scheduleOver = false;
  /** Clients at once the concurrency stages ask for now (updated by runVirtualUsers). */
  private target = 0;
  /** Epoch ms at which client 0 connects (from the engine's `launch`). */
  private startAt = 0;
  private launched = 0;
  private ended = 0;
  private atBarrier = 0;
  /** Resolves with the epoch ms at which every client passes the barrier. */
  private readonly release: Promise<number>;
  private releaseResolve!: (at: number) => void;
  /** Clients at the barrier that wait as objects (see ClientContext.whenReleased); emptied at the release. */
  private barrierWaiters: BarrierWaiter[] = [];
  private stopped = false;
  private finished = false;
  private reportTimer: NodeJS.Timeout | null = null;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  /** Samples this loop's delay into the `loop` histogram every LOOP_DELAY_RESOLUTION_MS (see {@link sampleLoop}). */
  private loopSampler: NodeJS.Timeout | null = null;
  private loopSampledAt = 0;
  private firstConnectAt = 0;
  private whenEmpty: (() => void) | null = null;
  private lastConnectedAt = 0;

  get options(): StartMessage['options'] {
    return this.plan.options;
  }

  constructor(private readonly plan: StartMessage) {
    // A token every client shares (--token) is put into the URLs once, not on every connect.
    const shared = plan.options.token;
    this.urls = scenarioUrls(plan.options).map((url) => (shared ? withToken(url, shared) : url));
    const { clients, workers } = plan.options;
    this.ownClients = Math.floor(clients / workers) + (plan.worker < clients % workers ? 1 : 0);
    this.release = new Promise((resolve) => (this.releaseResolve = resolve));
    void this.release.then((at) => this.releaseWaiters(at));
    this.spacing = clients > 1 ? (plan.options.ramp * 1000) / clients : 0;
    this.schedule = scheduleOf(plan.options.stage);
  }

  /** The URL client `index` connects to, with the token signed for it when the run signed them. */
  private urlOf(index: number): string {
    const url = this.urls[index % this.urls.length];
    const signed = this.signedToken(index);
    return signed ? withToken(url, signed) : url;
  }

  /** The token signed for client `index` (--token-secret), if the run signed them. */
  private signedToken(index: number): string | undefined {
    return this.plan.tokens?.[(index - this.plan.worker) / this.plan.options.workers];
  }

  /** `url` with client `index`'s token (the run's --token, or the one signed for it), if the run has one. */
  private withTokenOf(index: number, url: string): string {
    const token = this.signedToken(index) ?? this.plan.options.token;
    return token ? withToken(url, token) : url;
  }

  /**
   * Warms up and tells the engine so; the ramp starts only at `launch`, one moment for every worker. A
   * worker needs 0.3-0.6 s after its fork to load and warm up on a busy host, and a ramp due before
   * that would begin by launching every client already due in one burst.
   */
  async prepare(): Promise<void> {
    await this.loadScenario();
    warmUpHistogramCode('worker');
    this.reportTimer = setInterval(() => this.report(false), this.plan.reportMs);
    this.loopDelay.enable();
    this.loopSampledAt = performance.now();
    this.loopSampler = setInterval(() => this.sampleLoop(), LOOP_DELAY_RESOLUTION_MS).unref();
    send({ type: 'prepared', worker: this.plan.worker });
    if (this.ownClients === 0) void this.finish();
  }

  /**
   * The scenario's function, and a user scenario's data rows. The engine loaded both before it forked
   * this worker, so a failure here is this machine's (an agent's without the file): every client fails
   * with it as a `script` error rather than the worker going without a word.
   */
  private async loadScenario(): Promise<void> {
    const { options } = this.plan;
    const builtIn = builtInScenario(options.scenario);
    if (builtIn) return void (this.scenario = SCENARIO_RUNNERS[builtIn]);
    try {
      // Loaded only for a user scenario: a run of a built-in one needs neither a CSV parser nor module hooks.
      const [{ readDataRows }, { loadUserScenario }] = await Promise.all([import('./user/data.js'), import('./user/load.js')]);
      this.rows = options.data ? readDataRows(options.data) : null;
      this.scenario = userScenario(await loadUserScenario(options.scenario));
    } catch (err) {
      this.loadFailure = (err as Error).message;
    }
  }

  /** @internal Client `index`'s row of the --data file. */
  dataOf(index: number): DataRow | null {
    return this.rows ? this.rows[index % this.rows.length] : null;
  }

  /** Milliseconds from the ramp's start at which client `index` is due: its place on the ramp, or its arrival. */
  private offsetMs(index: number): number {
    return this.schedule?.model === 'arrivals' ? arrivalAt(this.schedule, index) * 1000 : index * this.spacing;
  }

  /** Starts the ramp: client i connects at epoch ms `startAt` + its offset (or, in concurrency stages, when the target counts it). */
  launch(startAt: number): void {
    if (this.ownClients === 0 || this.stopped) return;
    this.startAt = startAt;
    if (this.schedule?.model === 'concurrency') return this.runVirtualUsers(this.schedule);
    const { options, worker } = this.plan;
    // One timer per client would be 10k timers; one loop that starts every client that is due is cheaper.
    let next = worker;
    const launch = (): void => {
      const now = Date.now();
      while (next < options.clients && !this.stopped && startAt + this.offsetMs(next) <= now) {
        void this.runClient(next, 0, startAt + this.offsetMs(next));
        next += options.workers;
      }
      if (next < options.clients && !this.stopped) setTimeout(launch, Math.max(1, Math.min(50, startAt + this.offsetMs(next) - now)));
    };
    setTimeout(launch, Math.max(0, startAt - Date.now()));
  }

  /**
   * Concurrency stages: every VIRTUAL_USER_CHECK_MS, each of this worker's virtual users (every
   * `workers`-th index) the target counts (index below it) and not running starts; one runs its
   * scenario again and again while the target counts it, and stops after the iteration in which it
   * no longer does. Once the stages are over, the worker ends when its last iteration has.
   */
  private runVirtualUsers(schedule: Schedule): void {
    const { options, worker } = this.plan;
    const active = new Set<number>();
    const check = (): void => {
      if (this.stopped) return;
      const t = (Date.now() - this.startAt) / 1000;
      this.target = Math.floor(targetAt(schedule, t) + 1e-9);
      for (let v = worker; v < Math.min(this.target, options.clients); v += options.workers) {
        if (!active.has(v)) {
          active.add(v);
          void this.runVirtualUser(v).finally(() => active.delete(v));
        }
      }
      if (t < schedule.durationS) return void setTimeout(check, VIRTUAL_USER_CHECK_MS);
      this.scheduleOver = true;
      this.finishIfDone();
    };
    setTimeout(check, Math.max(0, this.startAt - Date.now()));
  }

  private async runVirtualUser(index: number): Promise<void> {
    this.running++;
    try {
      for (let iteration = 0; !this.stopped && index < this.target; iteration++) await this.runClient(index, iteration, Date.now());
    } finally {
      this.running--;
      this.finishIfDone();
    }
  }

  go(at: number): void {
    setTimeout(() => this.releaseResolve(at), Math.max(0, at - Date.now()));
  }

  /** The deadline: every client still running fails as `deadline`, and so does every one not yet launched. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.sleepers.failAll(deadline());
    if (this.idleCollection) clearTimeout(this.idleCollection);
    this.pacer.stop(deadline());
    for (const conn of this.connections) conn.terminate();
    this.releaseResolve(Date.now());
    // Clients the ramp had not started yet fail as `deadline`; virtual users never started simply were not needed.
    if (this.schedule?.model !== 'concurrency') this.counters.errors.deadline += this.ownClients - this.launched;
    this.finishIfDone();
    // A connect still in flight ends within its own timeout; do not wait for more than a moment.
    setTimeout(() => void this.finish(), 2000).unref();
  }

  /**
   * Runs one client. While its scenario runs, the worker keeps two small closures for it, not a
   * suspended async function (its frame and register file: about 140 B more, times 12,500 at C100k).
   */
  private runClient(index: number, iteration: number, slot: number): Promise<void> {
    this.launched++;
    const client = new Client(this, index, slot, this.urls[index % this.urls.length], iteration);
    let run: Promise<void>;
    try {
      if (!this.scenario) throw new SwarmError('script', this.loadFailure ?? 'the scenario was not loaded');
      run = Promise.resolve(this.scenario(client));
    } catch (err) {
      run = Promise.reject(err);
    }
    return run.then(() => this.clientEnded(client, null), (err: unknown) => this.clientEnded(client, { err }));
  }

  /** Counts a client's end: completed, or failed with the kind of what it threw. */
  private clientEnded(client: Client, failed: { err: unknown } | null): void {
    if (!failed) {
      this.counters.completed++;
    } else {
      const failure = failed.err instanceof SwarmError ? failed.err : this.thrownBy(failed.err);
      const kind = this.stopped ? 'deadline' : failure.kind;
      this.counters.errors[kind]++;
      if (this.errorSamples.length < MAX_ERROR_SAMPLES) this.errorSamples.push(`client ${client.index}: ${kind}: ${failure.message}`);
    }
    this.ended++;
    if (!client.reachedBarrier) this.arrive();
    this.finishIfDone();
  }

  /**
   * What a scenario threw that is not the swarm's own error: the user scenario's code (`script`,
   * counted by error name too), or a built-in scenario's bug (`other`).
   */
  thrownBy(err: unknown): SwarmError {
    const name = err instanceof Error ? err.name : typeof err;
    const message = err instanceof Error ? err.message : String(err);
    if (builtInScenario(this.plan.options.scenario)) return new SwarmError('other', message);
    const key = name in this.thrown || Object.keys(this.thrown).length < MAX_THROWN_NAMES ? name : '(other names)';
    this.thrown[key] = (this.thrown[key] ?? 0) + 1;
    return new SwarmError('script', `${name}: ${message}`);
  }

  /** Counts a client at the barrier (or past the point where it could reach it). */
  private arrive(): void {
    this.atBarrier++;
    if (this.atBarrier === this.ownClients) send({ type: 'ready', worker: this.plan.worker });
  }

  // What a client asks of its worker (see Client): public for it, not for anything else.

  /** @internal The barrier: resolves with the epoch ms at which every client of every worker passed it. */
  async passBarrier(): Promise<number> {
    this.arrive();
    const at = await this.release;
    if (this.stopped) throw deadline();
    return at;
  }

  /** @internal The barrier for a client that waits as an object. */
  waitAtBarrier(waiter: BarrierWaiter): void {
    this.arrive();
    this.barrierWaiters.push(waiter);
  }

  private releaseWaiters(at: number): void {
    const waiters = this.barrierWaiters;
    this.barrierWaiters = [];
    for (const waiter of waiters) {
      if (this.stopped) waiter.fail(deadline());
      else waiter.released(at);
    }
  }

  /** @internal */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => this.addSleeper({ at: Date.now() + ms, wake: resolve, fail: reject }));
  }

  /** @internal */
  addSleeper(alarm: Alarm): void {
    if (this.stopped) return alarm.fail(deadline());
    this.sleepers.add(alarm);
    if (this.rampOver() && this.allAsleep()) this.collectWhileIdle();
  }

  /** @internal */
  pace(at: number): Promise<void> {
    return this.pacer.until(at);
  }

  /** @internal Opens client `index`'s socket from its source address, to its URL or `url`; records the connect time. */
  async connect(index: number, url?: string): Promise<Connection> {
    const { options } = this.plan;
    if (this.stopped) throw deadline();
    const begun = nowMicros();
    this.firstConnectAt ||= Date.now();
    const addresses = options.sourceAddresses;
    const localAddress = addresses.length > 0 ? addresses[index % addresses.length] : undefined;
    // A bound client names its port too: bind() with port 0 searches the range for a free port, and on
    // this kernel (bhash2) each probe walks bucket chains, so past about 70,000 sockets connects stall
    // with the swarm's CPU all in the kernel. A named port costs one lookup.
    const localPort = localAddress === undefined ? undefined : FIRST_SOURCE_PORT + Math.floor(index / addresses.length);
    const conn = await Connection.open(url === undefined ? this.urlOf(index) : this.withTokenOf(index, url), this.counters, { localAddress, localPort, timeoutMs: options.connectTimeout, sockets: options.clientSockets });
    record(this.histograms.connect, nowMicros() - begun);
    this.lastConnectedAt = Date.now();
    this.connections.add(conn);
    // Report at once when this worker becomes full and when it stops being full, so the engine can
    // tell exactly when every client of every worker was connected at the same time.
    if (this.counters.connected === this.ownClients) {
      this.report(false);
      if (!this.rampCollected) {
        this.rampCollected = true;
        this.collectWhileIdle();
      }
    }
    conn.onClose(this);
    if (this.stopped) conn.terminate();
    return conn;
  }

  /** @internal A client's socket has closed (CloseListener: the worker listens to every one as itself, not with a closure each). */
  connectionClosed(conn: Connection): void {
    this.connections.delete(conn);
    if (this.counters.connected === this.ownClients - 1) this.report(false);
    if (this.connections.size === 0) this.whenEmpty?.();
  }

  /**
   * A full garbage collection in an idle moment: when every client of this worker is connected (the
   * ramp's end), and whenever every running client sleeps until a later round, provided none is due for
   * IDLE_GC_MARGIN_MS and frames were sent or read since the last one. The connect ramp leaves tens of MB
   * of garbage, and each round leaves the next round's awaits in the young generation: V8's collections
   * then came during the next timed round (incremental marking steps of up to 19 ms after the ramp, and
   * scavenges of 20-28 ms copying the sleeping clients' state at the first frames of rounds 2 and 3), and
   * bench-c10k QUICK's echo p99 read 7-15 ms instead of 3. Between rounds the same work costs no timed
   * figure anything; a run with no idle moment (a steady ramp, a broadcast) never collects here.
   *
   * It runs half-way into the gap, not at its start: the other workers' clients, interleaved with these,
   * are still finishing the round when this worker's last one sleeps, and a full GC marks on V8's helper
   * threads too, so at the gap's start it took both cores from them and from the server (p99 10-27 ms in
   * the seconds where it ran).
   */
  private collectWhileIdle(): void {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc || this.idleCollection || this.activity() === this.collectedAt) return;
    const gap = this.sleepGap();
    if (!this.quiet(gap)) return;
    const collect = (): void => {
      this.collectedAt = this.activity();
      gc();
    };
    // No client sleeps: the ramp's end of a scenario whose clients wait at the barrier or for messages.
    if (gap === Infinity) return void setImmediate(collect);
    this.idleCollection = setTimeout(() => {
      this.idleCollection = null;
      if (this.allAsleep() && this.quiet(this.sleepGap())) collect();
    }, gap / 2).unref();
  }

  /** Not stopped, no publisher pacing, and `gap` (ms to the next sleeping client) above IDLE_GC_MARGIN_MS. */
  private quiet(gap: number): boolean {
    return !this.stopped && this.pacer.waiting === 0 && gap > IDLE_GC_MARGIN_MS;
  }

  /** Every client has been started (never, in concurrency stages: virtual users start again until the end). */
  private rampOver(): boolean {
    return this.schedule?.model !== 'concurrency' && this.launched === this.ownClients;
  }

  /** Every client still running is asleep until a later round. */
  private allAsleep(): boolean {
    return this.sleepers.size === this.launched - this.ended;
  }

  /** Frames and connections so far: unchanged means no new garbage to collect. */
  private activity(): number {
    const { sent, received, connected, closed } = this.counters;
    return sent + received + connected + closed;
  }

  /** Milliseconds until the soonest sleeping client is due; Infinity if none sleeps. */
  private sleepGap(): number {
    return this.sleepers.soonest - Date.now();
  }

  /**
   * How late this sample ran beyond its period, into the `loop` histogram as every sample it stood in
   * for: the engine takes the p99 of it over the reports that timed latencies as the swarm's own part of
   * them (harness-share.ts). monitorEventLoopDelay keeps its own histogram, which cannot be merged across
   * workers; it still gives the maximum.
   */
  private sampleLoop(): void {
    const now = performance.now();
    recordLate(this.histograms.loop, (now - this.loopSampledAt - LOOP_DELAY_RESOLUTION_MS) * 1000, LOOP_DELAY_RESOLUTION_MS * 1000);
    this.loopSampledAt = now;
  }

  report(final: boolean): void {
    const cpu = process.cpuUsage();
    send({
      type: 'report',
      worker: this.plan.worker,
      final,
      counters: this.counters,
      cpuMicros: cpu.user + cpu.system,
      at: Date.now(),
      // Node records the whole interval between two samples, the sampling period included, so an idle
      // loop would read 10 ms; the delay is what lies beyond it.
      loopDelayMaxMs: Math.max(0, this.loopDelay.max / 1e6 - LOOP_DELAY_RESOLUTION_MS),
      histograms: encodeHistograms(this.histograms),
      samples: this.samples.splice(0),
      firstConnectAt: this.firstConnectAt,
      lastConnectedAt: this.lastConnectedAt,
      errorSamples: this.errorSamples.splice(0),
      timings: this.metrics.takeTimings(),
      checks: this.metrics.checks,
      thrown: this.thrown,
    });
    resetHistograms(this.histograms);
    this.loopDelay.reset();
  }

  private finishIfDone(): void {
    if (this.ended !== this.launched) return;
    const launchedAll = this.schedule?.model === 'concurrency' ? this.scheduleOver && this.running === 0 : this.launched === this.ownClients;
    if (this.stopped || launchedAll) void this.finish();
  }

  /**
   * Sends the final report once every socket has closed (their close events come after the clients'
   * failures when the run is stopped), or after a second at most; the engine then disconnects, and the
   * worker exits on that.
   */
  private async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (this.connections.size > 0) {
      await new Promise<void>((resolve) => {
        this.whenEmpty = resolve;
        setTimeout(resolve, 1000);
      });
    }
    if (this.reportTimer) clearInterval(this.reportTimer);
    if (this.loopSampler) clearInterval(this.loopSampler);
    this.report(true);
  }
}

function deadline(): SwarmError {
  return new SwarmError('deadline', 'the run stopped before this client finished');
}

function send(message: FromWorker): void {
  process.send?.(message);
}

// V8's compiler and GC helpers get only the CPU time the server and this thread leave (thread-priority.ts).
lowerHelperThreads();

let worker: Worker;

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'start':
      worker = new Worker(message);
      void worker.prepare();
      break;
    case 'launch':
      worker.launch(message.at);
      break;
    case 'go':
      worker.go(message.at);
      break;
    case 'stop':
      worker.stop();
      break;
  }
});
// A user scenario's stray promise or timer must not end the worker and every client in it: what it
// throws outside any client is counted by name and sampled like a client's error.
const strayError = (err: unknown): void => {
  if (!worker) throw err;
  const failure = worker.thrownBy(err);
  if (worker.errorSamples.length < MAX_ERROR_SAMPLES) worker.errorSamples.push(`outside any client: ${failure.kind}: ${failure.message}`);
};
process.on('unhandledRejection', strayError);
process.on('uncaughtException', strayError);
// If the engine dies, so does the worker: a swarm must never outlive its run.
process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches every process of the terminal's group; the engine decides (clients/host/interrupt.ts): it
// stops the workers with a message, so they can send what they measured before they go.
process.on('SIGINT', () => undefined);
