/** Starts servers on port 0 for tests, and stops them afterwards. */
import { createServer, type Hooks, type Monitor, type PubSubServer, type ServerOptions } from '../../server/index.js';
import { BENCH_SURFACES } from '../../server/options.js';

export interface RunningServer {
  server: PubSubServer;
  port: number;
  /** `ws://127.0.0.1:<port>` */
  ws: string;
  /** `http://127.0.0.1:<port>` */
  http: string;
  /** The admin listener's port, or null without one (`adminPort`). */
  adminPort: number | null;
  stats(): Promise<Record<string, any>>;
  close(): Promise<void>;
}

export async function startServer(options: Partial<ServerOptions> & { hooks?: Hooks; monitors?: Monitor[] } = {}): Promise<RunningServer> {
  // The tests' servers log nothing unless a test asks (the log test reads a child process's stderr), and
  // serve the benchmark surfaces unless a test turns them off (a test of the defaults).
  const server = createServer({ host: '127.0.0.1', port: 0, shutdownTimeout: 1000, logLevel: 'silent', ...BENCH_SURFACES, ...options });
  const { port, adminPort } = await server.listen();
  const http = `http://127.0.0.1:${port}`;
  return {
    server,
    port,
    ws: `ws://127.0.0.1:${port}`,
    http,
    adminPort,
    stats: async () => (await fetch(`${http}/stats`)).json() as Promise<Record<string, any>>,
    close: () => server.close(),
  };
}

/** Polls `check` until it returns true, for counters that settle after a close. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
