/**
 * The swarm engine: forks the worker processes (or, with --agents, has agents on other machines run them:
 * coordinator.ts), hands each its share of the clients, releases barriers,
 * merges what the workers report, and *emits*: `start`, `tick` (once a second), `peak` (the first time
 * every client is connected at once), `error-sample`, `done`. It prints nothing itself; the progress line
 * and the CSV writers in `output/` subscribe (as autocannon's engine and printers do).
 */
import { signTokens } from './tokens.js';
import { EventEmitter } from 'node:events';
import { clientSocketsLabel } from './sockets/open.js';
import { checkHost, type HostCheck } from '../host/host-check.js';
import type { FromWorker, ReportMessage, ToWorker } from './ipc.js';
import { LocalWorker, type WorkerLink } from './worker-link.js';
import type { AgentInfo, Coordinator } from '../agents/coordinator.js';
import {
  addCounters, emptyCounters, LATENCY_HISTOGRAMS, mergeEncoded, newHistogramSet, resetHistograms, summarize, totalErrors, warmUpHistogramCode,
  type Counters, type HistogramSet, type LatencySummary,
} from './metrics.js';
import { builtInScenario, scenarioUrl, validateSwarmOptions, type SwarmOptions } from './options.js';
import { addChecks, checkTotals, mergeTimings, type CheckTotals, type Checks, type TimingSet } from './named-metrics.js';
import { resolve } from 'node:path';
import { judge, parseThreshold, type JudgedFigures, type Threshold, type ThresholdResult } from './thresholds.js';
import { scheduleOf, stageAt, targetAt, type Schedule } from './stages.js';
import { busiestPct, meminfo, processCpuMicros, sampleProcess, sampleTree, type TreeSample } from '../host/proc.js';
import { saturation, type Saturation } from './saturation.js';
import { TIMED_LATENCIES } from './harness-share.js';
import { fitMemoryPerConnection, type MemoryFit } from './memory-fit.js';
import type { SlowSample } from './scenarios/index.js';

export { SATURATED_CPU_PCT } from './saturation.js';

const REPORT_MS = 500;
/** How long the end of a run waits for its workers' processes to exit after their final reports, ms. */
const WORKER_EXIT_WAIT_MS = 5000;
/** The shortest interval a share of CPU is taken over, ms (see the tick, and {@link Swarm.onReport}). */
const MIN_SHARE_INTERVAL_MS = REPORT_MS / 2;
/**
 * How far ahead of now the engine sets a moment every worker must act on together (the ramp's start,
 * the barrier's release), ms: a message to a remote worker crosses Redis and its agent first.
 */
const LOCAL_LEAD_MS = 100;
const REMOTE_LEAD_MS = 500;


export interface StartEvent {
  options: SwarmOptions;
  url: string;
  /** Epoch ms. */
  startedAt: number;
  /** What the clients' sockets are (see connection.ts). */
  clientSockets: string;
  /** The agents running the workers (`--agents`); empty when all run here. */
  agents: string[];
}

/** The moment (epoch ms) every worker starts its ramp: client 0's slot. */
export interface LaunchEvent {
  at: number;
}

/** One second of the run. Counters are cumulative; latencies and rates cover this tick only. */
export interface TickEvent {
  /** Whole seconds since the start. */
  second: number;
  counters: Counters;
  /** Frames received per second during this tick. */
  receivedPerSecond: number;
  rtt: LatencySummary | null;
  slow: LatencySummary | null;
  /** Broadcast copies that arrived in this tick, timed from their due moment. */
  fanout: LatencySummary | null;
  /** CPU of all swarm processes together, % of one core. */
  clientCpuPct: number;
  /** CPU of the busiest swarm process, % of one core. */
  clientCpuMaxPct: number;
  /** Longest event-loop delay of any worker, ms. */
  loopDelayMaxMs: number;
  /** Every worker's event-loop delay samples of this tick (see harness-share.ts). */
  loop: LatencySummary | null;
  /** A user scenario's named timings that were recorded in this tick. */
  timings: Record<string, LatencySummary>;
  /** A user scenario's checks so far, all names together. */
  checks: CheckTotals;
  /** With --stage: the stage running (1-based) and its target now (clients at once, or new clients per second). */
  stage: { number: number; target: number } | null;
  /**
   * The server's CPU (% of one core) and RSS, when its pid is known and it runs; a supervisor's workers
   * are summed in, and `busiestPct` is the busiest single process.
   */
  server: { cpuPct: number; busiestPct: number; rssBytes: number } | null;
  /**
   * The swarm's RSS (the engine and the workers it forked here; null when workers run on agents), the
   * kernel's slab, where every socket's state lives, and MemAvailable (the whole machine's; null
   * without /proc).
   */
  memory: { clientRssBytes: number | null; slabBytes: number | null; availableBytes: number | null };
}

/** What a run did, as the summary CSV and the printed summary show it. */
export interface RunSummary {
  options: SwarmOptions;
  url: string;
  startedAt: number;
  durationS: number;
  counters: Counters;
  /** Most clients connected at the same time (sampled at each report). */
  peakConnected: number;
  connect: LatencySummary | null;
  rtt: LatencySummary | null;
  slow: LatencySummary | null;
  /** From a crowd broadcast's due moment to its arrival, over every client's copy. */
  fanout: LatencySummary | null;
  /** Broadcast: from each timed message's due moment to the moment its publisher sent it. */
  lag: LatencySummary | null;
  /** Connections opened per second, from the first connect started to the last one open. */
  connectRate: number;
  /** Connections per second the ramp asked for. */
  offeredConnectRate: number;
  /** Deliveries expected in broadcast/crowd (published x subscribers on the channel); null elsewhere. */
  expectedDeliveries: number | null;
  /** Expected minus delivered (broadcast, crowd); null elsewhere. */
  lostDeliveries: number | null;
  server: {
    rssRestBytes: number;
    rssPeakBytes: number;
    /** Server memory per connection, fitted over the ramp (clients/swarm/memory-fit.ts); null when no fit means something. */
    bytesPerConnection: number | null;
    /** Why there is no fit (printed as N/A), or null. */
    memoryFitMissing: string | null;
    /** Seconds (ticks) the slope was fitted over. */
    memoryPoints: number;
    /** The highest CPU share of one server process in any second, % of one core (what saturates). */
    cpuMaxPct: number;
  } | null;
  /**
   * The swarm's and the kernel's memory per connection, fitted over the ramp like the server's: the
   * swarm's RSS (engine and local workers), and the slab (both sockets of a connection on loopback).
   */
  memory: {
    client: MemoryFit;
    kernel: MemoryFit;
    clientRssPeakBytes: number | null;
    slabRestBytes: number | null;
    slabPeakBytes: number | null;
  };
  clientCpuMaxPct: number;
  /**
   * CPU seconds of every swarm process over the run, from /proc: the engine's since the run began, and
   * each worker's whole life (start-up included) up to its final report.
   */
  swarmCpuS: number;
  /** Longest event-loop delay of any worker during the run, ms; latencies include it. */
  clientLoopDelayMaxMs: number;
  /**
   * The workers' event-loop delay over the reports that timed a latency (the measured window): the
   * swarm's own part of each latency it printed; null when nothing was timed. See harness-share.ts.
   */
  loop: LatencySummary | null;
  /**
   * Which side ran out of CPU: `server` or `client` (one process at 90% of a core or more), `both`,
   * `machine` (no single process, but all cores busy together), `neither`; `unknown` without a server pid.
   */
  saturated: Saturation;
  /** Every slow reply (slow scenario). */
  samples: SlowSample[];
  /** A user scenario's named timings (`ctx.time`), over the run. */
  timings: Record<string, LatencySummary>;
  /** A user scenario's checks (`ctx.check`) by name. */
  checks: Checks;
  /** What a user scenario's code threw, by error name (its clients count as `script` errors). */
  thrown: Record<string, number>;
  /** Every --threshold, judged on this summary. */
  thresholds: ThresholdResult[];
  /** What the clients' sockets are (see connection.ts). */
  clientSockets: string;
  /** What the host check saw just before the load (`hostCheck` seconds); null without one. */
  host: HostCheck | null;
  /**
   * The signal that stopped the run early (Ctrl-C: `SIGINT`), or null when it ran to its end. An
   * interrupted run's figures are what was measured until then; clients it cut count as `deadline`.
   */
  interrupted: string | null;
  /** Agents that stopped reporting during the run (their clients count as `other` errors). */
  lostAgents: string[];
}

interface WorkerState {
  link: WorkerLink;
  counters: Counters;
  /** CPU and time of the previous report, to compute the share of a core in between. */
  last: { cpuMicros: number; at: number } | null;
  /** Share of one core over the latest report interval, %. */
  cpuPct: number;
  /** Longest event-loop delay since the engine's last tick, ms. */
  loopDelayMaxMs: number;
  /** The worker's CPU µs over its life so far (all of it after its final report). */
  procCpuMicros: number;
  /** Its user scenario's checks and throws so far (cumulative, as it reports them). */
  checks: Checks;
  thrown: Record<string, number>;
  /** Resolves once the worker's process has exited (a local one's; a remote one's at once). */
  exited: Promise<void>;
  /** Loaded and warmed up (its `prepared` came). */
  prepared: boolean;
  done: boolean;
}

export class Swarm extends EventEmitter {
  readonly options: SwarmOptions;
  readonly url: string;
  private readonly workers: WorkerState[] = [];
  private readonly tickHistograms: HistogramSet = newHistogramSet();
  private readonly totalHistograms: HistogramSet = newHistogramSet();
  private readonly tickTimings: TimingSet = new Map();
  private readonly totalTimings: TimingSet = new Map();
  private readonly samples: SlowSample[] = [];
  private ready = 0;
  /** The ramp's start has been sent. */
  private launched = false;
  private peakConnected = 0;
  private peakAnnounced = false;
  private serverPeak = { connected: -1, rssBytes: 0 };
  /** What each tick in which the number connected rose measured (null: not measured). */
  private readonly growth: { connected: number; server: number | null; client: number | null; slab: number | null }[] = [];
  private readonly memoryPeak = { client: 0, slab: 0 };
  private slabRest: number | null = null;
  private lastConnected = 0;
  private serverCpuMax = 0;
  private clientCpuMax = 0;
  private loopDelayMax = 0;
  private machineCpuMax = 0;
  private firstConnectAt = 0;
  private lastConnectedAt = 0;
  private interruptedBy: string | null = null;
  private coordinator: Coordinator | null = null;
  private engineCpuAtStart = 0;
  private readonly thresholds: Threshold[];
  private readonly schedule: Schedule | null;
  /** Epoch ms at which the ramp (or the first stage) began; 0 before. */
  private launchedAt = 0;

  /** Validates the options (throws a RangeError naming the flag); `run()` starts the swarm. */
  constructor(options: Partial<SwarmOptions>) {
    super();
    const valid = validateSwarmOptions(options);
    // A user scenario's files are passed on by their absolute paths: workers, and agents on this
    // machine, may run in another directory.
    this.options = builtInScenario(valid.scenario) ? valid : { ...valid, scenario: resolve(valid.scenario), data: valid.data && resolve(valid.data) };
    this.url = scenarioUrl(this.options);
    this.thresholds = this.options.threshold.map(parseThreshold);
    this.schedule = scheduleOf(this.options.stage);
  }

  /**
   * Stops the run early, as its timeout would (every worker closes its sockets and reports), and marks
   * the summary with `reason`; `run()` then resolves with what was measured.
   */
  interrupt(reason: string): void {
    if (this.interruptedBy !== null) return;
    this.interruptedBy = reason;
    this.broadcast({ type: 'stop' });
  }

  /** Runs to the end (every client done, the timeout, or {@link interrupt}) and resolves with the summary, also emitted as `done`. */
  async run(): Promise<RunSummary> {
    const { options } = this;
    // A user scenario is loaded here first, so one that cannot be (and its data) fails the run before
    // any worker starts, with the reason (a ScenarioFileError).
    if (!builtInScenario(options.scenario)) {
      const [{ loadUserScenario }, { readDataRows }] = await Promise.all([import('./user/load.js'), import('./user/data.js')]);
      if (options.data) readDataRows(options.data);
      await loadUserScenario(options.scenario);
    }
    const host = options.hostCheck > 0 ? await checkHost(options.hostCheck) : null;
    // The engine decodes, merges and summarizes every worker's histograms each tick; unoptimized, the
    // first ticks with timed values took CPU the servers under test needed (see warmUpHistogramCode).
    warmUpHistogramCode('engine');
    const tokens = options.tokenSecret ? await signTokens(options.tokenSecret, options.clients) : null;
    // With agents, workers run on their machines: worker w on agent w mod N. They are asked for now, so
    // that a missing one fails the run before it starts.
    let coordinator: Coordinator | null = null;
    if (options.agents > 0) {
      // Loaded only for a run with agents: ioredis costs 30-80 ms of CPU that every other run would pay.
      const { Coordinator: Coordinating } = await import('../agents/coordinator.js');
      coordinator = await Coordinating.connect(options.coordinator, options.coordinatorKey);
    }
    let agents: AgentInfo[] = [];
    try {
      if (coordinator) agents = await coordinator.takeAgents(options.agents, options.agentWait);
    } catch (err) {
      await coordinator?.close();
      throw err;
    }
    this.coordinator = coordinator;
    const startedAt = Date.now();
    this.engineCpuAtStart = processCpuMicros()?.own ?? 0;
    const serverRest = options.serverPid ? sampleTree(options.serverPid) : null;
    this.slabRest = meminfo().slabBytes;
    this.emit('start', { options, url: this.url, startedAt, clientSockets: this.clientSockets(), agents: agents.map((a) => a.name) } satisfies StartEvent);
    const finished = new Promise<void>((resolve) => this.once('all-final', resolve));
    // The ramp starts when every worker is prepared (launchWhenPrepared), not at a fixed moment after
    // the fork: workers load and warm up in 0.3-0.6 s on a busy host, remote ones later still.
    for (let worker = 0; worker < options.workers; worker++) {
      this.spawn(coordinator ? coordinator.link(agents[worker % agents.length], worker) : new LocalWorker(), worker, tokens);
    }
    if (this.interruptedBy !== null) this.broadcast({ type: 'stop' }); // interrupted during the host check

    let lastSecond = 0;
    let lastTick = { at: startedAt, received: 0 };
    // CPU shares are taken over MIN_SHARE_INTERVAL_MS at least: /proc counts CPU in 10 ms steps, and the
    // run's last tick can come a few ms after the one before, so that one is measured from the one before.
    let cpuBase = { at: startedAt, server: serverRest, engineCpu: cpuMicros() };
    let olderCpuBase = cpuBase;
    const tick = (): void => {
      const now = Date.now();
      const counters = this.sum();
      const elapsed = Math.max(1, now - lastTick.at) * 1000;
      const engineCpu = cpuMicros();
      const base = now - cpuBase.at >= MIN_SHARE_INTERVAL_MS ? cpuBase : olderCpuBase;
      const cpuElapsed = Math.max(1, now - base.at) * 1000;
      // Workers' shares come from their own report times: a busy worker reports late, and its CPU
      // must not land in whichever tick the report happens to reach.
      const enginePct = ((engineCpu - base.engineCpu) / cpuElapsed) * 100;
      let clientCpuPct = enginePct;
      let clientCpuMax = enginePct;
      let loopDelayMaxMs = 0;
      for (const w of this.workers) {
        if (w.done) continue;
        clientCpuPct += w.cpuPct;
        clientCpuMax = Math.max(clientCpuMax, w.cpuPct);
        loopDelayMaxMs = Math.max(loopDelayMaxMs, w.loopDelayMaxMs);
        w.loopDelayMaxMs = 0;
      }
      this.loopDelayMax = Math.max(this.loopDelayMax, loopDelayMaxMs);
      const serverNow = options.serverPid ? sampleTree(options.serverPid) : null;
      const server = serverNow && base.server
        ? {
            cpuPct: ((serverNow.cpuMicros - base.server.cpuMicros) / cpuElapsed) * 100,
            busiestPct: busiestPct(base.server, serverNow, cpuElapsed),
            rssBytes: serverNow.rssBytes,
          }
        : null;
      const memory = { clientRssBytes: this.clientRss(), ...meminfo() };
      if (counters.connected > this.lastConnected) {
        this.growth.push({ connected: counters.connected, server: server?.rssBytes ?? null, client: memory.clientRssBytes, slab: memory.slabBytes });
      }
      this.memoryPeak.client = Math.max(this.memoryPeak.client, memory.clientRssBytes ?? 0);
      this.memoryPeak.slab = Math.max(this.memoryPeak.slab, memory.slabBytes ?? 0);
      this.lastConnected = counters.connected;
      if (server) {
        this.serverCpuMax = Math.max(this.serverCpuMax, server.busiestPct);
        // Memory per idle connection: the lowest RSS seen while the most clients were connected, so the
        // garbage of the connect burst, freed by the server's next GC, is not counted as connection state.
        if (counters.connected > this.serverPeak.connected) this.serverPeak = { connected: counters.connected, rssBytes: server.rssBytes };
        else if (counters.connected === this.serverPeak.connected) this.serverPeak.rssBytes = Math.min(this.serverPeak.rssBytes, server.rssBytes);
      }
      this.clientCpuMax = Math.max(this.clientCpuMax, clientCpuMax);
      this.machineCpuMax = Math.max(this.machineCpuMax, clientCpuPct + (server?.cpuPct ?? 0));
      const event: TickEvent = {
        // The last tick comes early (when the run ends); it still gets its own second.
        second: (lastSecond = Math.max(lastSecond + 1, Math.round((now - startedAt) / 1000))),
        counters,
        receivedPerSecond: ((counters.received - lastTick.received) * 1e6) / elapsed,
        rtt: summarize(this.tickHistograms.rtt),
        slow: summarize(this.tickHistograms.slow),
        fanout: summarize(this.tickHistograms.fanout),
        clientCpuPct,
        clientCpuMaxPct: clientCpuMax,
        loopDelayMaxMs,
        loop: summarize(this.tickHistograms.loop),
        timings: summarizeTimings(this.tickTimings),
        checks: checkTotals(this.checks()),
        stage: this.stageNow(now),
        server,
        memory,
      };
      resetHistograms(this.tickHistograms);
      this.tickTimings.clear();
      lastTick = { at: now, received: counters.received };
      if (base === cpuBase) {
        olderCpuBase = cpuBase;
        cpuBase = { at: now, server: serverNow ?? cpuBase.server, engineCpu };
      }
      this.emit('tick', event);
      if (options.abortOnFail) this.abortOnFailedThreshold();
    };
    const ticker = setInterval(tick, 1000);
    const deadline = setTimeout(() => this.broadcast({ type: 'stop' }), options.timeout * 1000);
    const killer = setTimeout(() => this.killAll(), options.timeout * 1000 + 10_000);
    await finished;
    // The run ends once its local workers have exited (they do on the disconnect that followed their
    // final report), so a command that exits next leaves none behind and has reaped, and counted, them.
    await Promise.race([Promise.all(this.workers.map((w) => w.exited)), new Promise((resolve) => setTimeout(resolve, WORKER_EXIT_WAIT_MS).unref())]);
    await this.coordinator?.close();
    clearInterval(ticker);
    clearTimeout(deadline);
    clearTimeout(killer);
    tick();
    const summary = this.summarize(startedAt, serverRest, host);
    summary.thresholds = judge(this.thresholds, summary);
    this.emit('done', summary);
    return summary;
  }

  private spawn(link: WorkerLink, worker: number, tokens: string[] | null): void {
    const exited = link.pid === null ? Promise.resolve() : new Promise<void>((resolve) => link.onExit(() => resolve()));
    const state: WorkerState = { link, counters: emptyCounters(), last: null, cpuPct: 0, loopDelayMaxMs: 0, procCpuMicros: 0, checks: {}, thrown: {}, exited, prepared: false, done: false };
    this.workers.push(state);
    link.onMessage((message: FromWorker) => this.onMessage(state, message));
    link.onExit((how) => {
      if (state.done) return;
      // A worker that dies mid-run loses its clients; count every one it did not finish as `other`.
      this.emit('error-sample', `worker ${worker}${link.where === 'local' ? '' : ` (agent ${link.where})`} exited (${how}) before its final report`);
      const ownClients = Math.floor(this.options.clients / this.options.workers) + (worker < this.options.clients % this.options.workers ? 1 : 0);
      const accounted = state.counters.completed + totalErrors(state.counters);
      state.counters = { ...state.counters, connected: 0, opening: 0, errors: { ...state.counters.errors, other: state.counters.errors.other + ownClients - accounted } };
      this.markDone(state);
    });
    const own = tokens && tokens.filter((_, i) => i % this.options.workers === worker);
    link.send({ type: 'start', options: this.options, worker, reportMs: REPORT_MS, tokens: own });
  }

  private onMessage(state: WorkerState, message: FromWorker): void {
    if (message.type === 'prepared') {
      state.prepared = true;
      return this.launchWhenPrepared();
    }
    if (message.type === 'ready') {
      this.ready++;
      if (this.ready === this.options.workers) this.broadcast({ type: 'go', at: Date.now() + this.leadMs() });
      return;
    }
    this.onReport(state, message);
  }

  /** Starts every worker's ramp at one moment, once each is prepared or gone. */
  private launchWhenPrepared(): void {
    if (this.launched || !this.workers.every((w) => w.prepared || w.done) || this.workers.length < this.options.workers) return;
    this.launched = true;
    const at = Date.now() + this.leadMs();
    this.launchedAt = at;
    this.broadcast({ type: 'launch', at });
    this.emit('launch', { at } satisfies LaunchEvent);
  }

  private leadMs(): number {
    return this.coordinator ? REMOTE_LEAD_MS : LOCAL_LEAD_MS;
  }

  private onReport(state: WorkerState, report: ReportMessage): void {
    state.counters = report.counters;
    // Its total CPU: what it reports of itself (getrusage), and at its final report, for a local worker,
    // /proc's figure once (it is alive until the engine disconnects it). A worker that dies keeps its last.
    state.procCpuMicros = report.final && state.link.pid !== null ? (processCpuMicros(state.link.pid)?.own ?? report.cpuMicros) : report.cpuMicros;
    // The first report only sets the origin: its CPU is the worker's start-up, not load it generated.
    // A share is taken over half a report period at least: a worker also reports when it becomes full
    // and when it stops being full, sometimes a millisecond after a periodic report, and over an
    // interval that short the millisecond clock alone makes the share read several cores.
    if (!state.last) state.last = { cpuMicros: report.cpuMicros, at: report.at };
    else if (report.at - state.last.at >= MIN_SHARE_INTERVAL_MS) {
      state.cpuPct = ((report.cpuMicros - state.last.cpuMicros) / ((report.at - state.last.at) * 1000)) * 100;
      state.last = { cpuMicros: report.cpuMicros, at: report.at };
    }
    state.loopDelayMaxMs = Math.max(state.loopDelayMaxMs, report.loopDelayMaxMs);
    // The run's maximum takes every report, a worker's final one too: no tick reads a finished worker,
    // and a run shorter than a tick has no other.
    this.loopDelayMax = Math.max(this.loopDelayMax, report.loopDelayMaxMs);
    // The loop delay counts toward the run's only from reports that timed a latency: the swarm's part of
    // those latencies, not of its ramp or its idle waits (harness-share.ts).
    const timed = TIMED_LATENCIES.some((name) => report.histograms[name]);
    mergeEncoded([this.tickHistograms, this.totalHistograms], report.histograms, LATENCY_HISTOGRAMS);
    mergeEncoded(timed ? [this.tickHistograms, this.totalHistograms] : [this.tickHistograms], report.histograms, ['loop']);
    this.samples.push(...report.samples);
    mergeTimings([this.tickTimings, this.totalTimings], report.timings);
    state.checks = report.checks ?? {};
    state.thrown = report.thrown ?? {};
    if (report.firstConnectAt && (!this.firstConnectAt || report.firstConnectAt < this.firstConnectAt)) this.firstConnectAt = report.firstConnectAt;
    this.lastConnectedAt = Math.max(this.lastConnectedAt, report.lastConnectedAt);
    for (const line of report.errorSamples) this.emit('error-sample', line);
    const connected = this.workers.reduce((sum, w) => sum + w.counters.connected, 0);
    this.peakConnected = Math.max(this.peakConnected, connected);
    if (!this.peakAnnounced && connected === this.options.clients) {
      this.peakAnnounced = true;
      this.emit('peak', { connected });
    }
    if (report.final) this.markDone(state);
  }

  private markDone(state: WorkerState): void {
    if (state.done) return;
    state.done = true;
    state.link.disconnect();
    if (this.workers.length === this.options.workers && this.workers.every((w) => w.done)) this.emit('all-final');
    else this.launchWhenPrepared(); // one gone before it was prepared must not hold the others' ramp
  }

  /**
   * Stops the run (as {@link interrupt} does) at the first threshold the figures so far fail. Figures
   * that are final only at the end (completed, lost, a timing's count) and those not measured yet wait
   * for the end; the others are judged as they stand, as k6 does: a p99 or a share of checks could
   * still recover, but a pipeline that asked to abort wants the run's time back.
   */
  private abortOnFailedThreshold(): void {
    if (this.interruptedBy !== null) return;
    const judgedNow = this.thresholds.filter((t) => t.figure !== 'completed' && t.figure !== 'lost' && !(t.figure === 'latency' && t.stat === 'count'));
    const failed = judge(judgedNow, this.figuresSoFar()).find((r) => r.measured !== null && !r.pass);
    if (failed) this.interrupt(`threshold ${failed.threshold} failed (measured ${failed.measured})`);
  }

  /** The stage running at epoch ms `now` and its target; null without stages, before the first and after the last. */
  private stageNow(now: number): TickEvent['stage'] {
    if (!this.schedule || !this.launchedAt) return null;
    const t = (now - this.launchedAt) / 1000;
    if (t < 0 || t >= this.schedule.durationS) return null;
    return { number: stageAt(this.schedule, t).index + 1, target: Math.round(targetAt(this.schedule, t) * 10) / 10 };
  }

  /** The run's figures so far, as thresholds read them. */
  private figuresSoFar(): JudgedFigures {
    const total = (name: keyof HistogramSet): LatencySummary | null => summarize(this.totalHistograms[name]);
    return {
      counters: this.sum(), lostDeliveries: null, checks: this.checks(), timings: summarizeTimings(this.totalTimings),
      connect: total('connect'), rtt: total('rtt'), slow: total('slow'), fanout: total('fanout'), lag: total('lag'), loop: total('loop'),
    };
  }

  /** Every worker's checks added up. */
  private clientSockets(): string {
    return clientSocketsLabel(this.options.clientSockets, this.url.split(',').map((url) => url.trim()));
  }

  private checks(): Checks {
    return this.workers.reduce((total, w) => addChecks(total, w.checks), {} as Checks);
  }

  /** Every worker's throws by name added up. */
  private thrown(): Record<string, number> {
    const total: Record<string, number> = {};
    for (const w of this.workers) for (const [name, count] of Object.entries(w.thrown)) total[name] = (total[name] ?? 0) + count;
    return total;
  }

  /** Every worker's counters added up. */
  private sum(): Counters {
    return this.workers.reduce((total, w) => addCounters(total, w.counters), emptyCounters());
  }

  private broadcast(message: ToWorker): void {
    for (const w of this.workers) if (!w.done) w.link.send(message);
  }

  private killAll(): void {
    for (const w of this.workers) if (!w.done) w.link.kill();
  }

  /** The slope of one memory figure over the connections of the ramp (memory-fit.ts). */
  private fitGrowth(figure: 'server' | 'client' | 'slab'): MemoryFit {
    const points = this.growth.flatMap((g) => (g[figure] === null ? [] : [[g.connected, g[figure]] as const]));
    return fitMemoryPerConnection(points, this.peakConnected);
  }

  /** RSS of this engine and every worker it forked; null when a worker runs elsewhere (an agent's). */
  private clientRss(): number | null {
    let bytes = process.memoryUsage.rss();
    for (const w of this.workers) {
      if (w.link.pid === null) return null;
      bytes += sampleProcess(w.link.pid)?.rssBytes ?? 0;
    }
    return bytes;
  }

  private summarize(startedAt: number, serverRest: TreeSample | null, host: HostCheck | null): RunSummary {
    const { options } = this;
    const counters = this.sum();
    const opened = counters.connected + counters.closed;
    const connectSpan = (this.lastConnectedAt - this.firstConnectAt) / 1000;
    const perChannel = options.scenario === 'broadcast' || options.scenario === 'crowd' ? counters.subscribed : null;
    const expectedDeliveries = perChannel === null ? null : counters.published * perChannel;
    const serverCpuKnown = options.serverPid > 0 && serverRest !== null;
    const saturated = saturation(serverCpuKnown ? this.serverCpuMax : null, this.clientCpuMax, this.machineCpuMax);
    return {
      options,
      url: this.url,
      startedAt,
      durationS: (Date.now() - startedAt) / 1000,
      counters,
      peakConnected: this.peakConnected,
      connect: summarize(this.totalHistograms.connect),
      rtt: summarize(this.totalHistograms.rtt),
      slow: summarize(this.totalHistograms.slow),
      fanout: summarize(this.totalHistograms.fanout),
      lag: summarize(this.totalHistograms.lag),
      connectRate: connectSpan > 0 ? opened / connectSpan : opened,
      offeredConnectRate: options.ramp > 0 ? options.clients / options.ramp : Infinity,
      expectedDeliveries,
      lostDeliveries: expectedDeliveries === null ? null : expectedDeliveries - counters.delivered,
      server: serverCpuKnown
        ? {
            rssRestBytes: serverRest.rssBytes,
            rssPeakBytes: this.serverPeak.rssBytes,
            ...(({ bytesPerConnection, why }) => ({ bytesPerConnection, memoryFitMissing: why }))(this.fitGrowth('server')),
            memoryPoints: this.growth.filter((g) => g.server !== null).length,
            cpuMaxPct: this.serverCpuMax,
          }
        : null,
      memory: {
        client: this.fitGrowth('client'),
        kernel: this.fitGrowth('slab'),
        clientRssPeakBytes: this.memoryPeak.client || null,
        slabRestBytes: this.slabRest,
        slabPeakBytes: this.memoryPeak.slab || null,
      },
      clientCpuMaxPct: this.clientCpuMax,
      swarmCpuS: ((processCpuMicros()?.own ?? 0) - this.engineCpuAtStart + this.workers.reduce((sum, w) => sum + w.procCpuMicros, 0)) / 1e6,
      clientLoopDelayMaxMs: this.loopDelayMax,
      loop: summarize(this.totalHistograms.loop),
      saturated,
      samples: this.samples,
      timings: summarizeTimings(this.totalTimings),
      checks: this.checks(),
      thrown: this.thrown(),
      thresholds: [],
      clientSockets: this.clientSockets(),
      host,
      interrupted: this.interruptedBy,
      lostAgents: this.coordinator?.lostAgents ?? [],
    };
  }
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Each named timing's percentiles, names in order. */
function summarizeTimings(set: TimingSet): Record<string, LatencySummary> {
  const out: Record<string, LatencySummary> = {};
  for (const name of [...set.keys()].sort()) {
    const summary = summarize(set.get(name)!);
    if (summary) out[name] = summary;
  }
  return out;
}
