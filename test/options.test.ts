/** Option validation: one test per message, and the CLI's handling of bad flags. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_OPTIONS, validateOptions } from '../server/options.js';

const CLI = fileURLToPath(new URL('../server/cli.js', import.meta.url));
const BASELINE_CLI = fileURLToPath(new URL('../server/baseline/cli.js', import.meta.url));

describe('validateOptions', () => {
  it('fills in the defaults', () => {
    assert.deepEqual(validateOptions({}), DEFAULT_OPTIONS);
    assert.equal(validateOptions({ port: 0 }).port, 0);
  });

  const bad: [Record<string, unknown>, RegExp, typeof TypeError | typeof RangeError][] = [
    [{ port: 70000 }, /^port must be an integer from 0 to 65535 \(got 70000\)$/, RangeError],
    [{ port: 'x' }, /^port must be an integer from 0 to 65535 \(got "x"\)$/, TypeError],
    [{ maxPayload: 10 }, /^maxPayload must be an integer from 128/, RangeError],
    [{ maxSubscriptions: 0 }, /^maxSubscriptions must be an integer from 1/, RangeError],
    [{ rateLimit: -1 }, /^rateLimit must be an integer from 0/, RangeError],
    [{ maxBackpressure: 1.5 }, /^maxBackpressure must be an integer/, RangeError],
    [{ idleTimeout: 4 }, /^idleTimeout must be 0 \(off\) or from 8 to 960 seconds \(got 4\)$/, RangeError],
    [{ idleTimeout: 1000 }, /^idleTimeout must be an integer from 0 to 960/, RangeError],
    [{ expire: -5 }, /^expire must be an integer from 0/, RangeError],
    [{ slowIoPool: 0 }, /^slowIoPool must be an integer from 1/, RangeError],
    [{ shutdownTimeout: NaN }, /^shutdownTimeout must be an integer/, TypeError],
    [{ host: '' }, /^host must be a non-empty string/, TypeError],
    [{ publishKey: 5 }, /^publishKey must be a non-empty string \(got 5\)$/, TypeError],
    [{ slowIoUrl: '' }, /^slowIoUrl must be a non-empty string/, TypeError],
    [{ clientPublish: 'yes' }, /^clientPublish must be true or false/, TypeError],
    [{ allowFallback: false }, /^unknown option "allowFallback"$/, TypeError],
    [{ slowIo: 'mysql' }, /^slowIo must be one of off, timer, redis, postgres \(got "mysql"\)$/, RangeError],
    [{ slowIoUrl: 'redis://x' }, /^slowIoUrl needs slowIo redis or postgres$/, RangeError],
    [{ redis: 'http://x' }, /^redis must be a redis:\/\/ or rediss:\/\/ URL \(got "http:\/\/x"\)$/, RangeError],
    [{ redis: '' }, /^redis must be a non-empty string/, TypeError],
    [{ redis: 'redis://127.0.0.1:6379', prefix: 'a b' }, /^prefix must be up to 100 characters of A-Z a-z 0-9 _ - . : @ \(got "a b"\)$/, RangeError],
    [{ prefix: 'app' }, /^prefix needs redis or redisCluster$/, RangeError],
    [{ maxConnections: 0 }, /^maxConnections must be an integer from 1 to 10000000 \(got 0\)$/, RangeError],
    [{ maxConnectionsPerIp: -1 }, /^maxConnectionsPerIp must be an integer from 0/, RangeError],
    [{ maxJsonDepth: 0 }, /^maxJsonDepth must be an integer from 1 to 1000 \(got 0\)$/, RangeError],
    [{ maxHeaderSize: 100 }, /^maxHeaderSize must be an integer from 1024/, RangeError],
    [{ redisCluster: '127.0.0.1' }, /^redisCluster must be host:port of one or more cluster nodes, comma-separated \(got "127.0.0.1"\)$/, RangeError],
    [{ redisCluster: '127.0.0.1:7000', redis: 'redis://127.0.0.1:6379' }, /^redisCluster and redis exclude each other/, RangeError],
    [{ history: 10, redisCluster: '127.0.0.1:7000' }, /^history works with redis or in one process, not yet with redisCluster$/, RangeError],
    [{ colour: 'blue' }, /^unknown option "colour"$/, TypeError],
    [{ logLevel: 'loud' }, /^logLevel must be one of fatal, error, warn, info, debug, trace, silent \(got "loud"\)$/, RangeError],
  ];
  for (const [input, message, type] of bad) {
    it(`refuses ${JSON.stringify(input)}`, () => {
      assert.throws(() => validateOptions(input as never), (err: Error) => err instanceof type && message.test(err.message));
    });
  }

  it('names the command-line flag instead when the command line asks', () => {
    assert.throws(() => validateOptions({ maxPayload: 10 }, 'flags'), /^RangeError: --max-payload must be an integer from 128/);
    assert.throws(() => validateOptions({ prefix: 'app' }, 'flags'), /^RangeError: --prefix needs --redis or --redis-cluster$/);
  });
});

describe('server CLI', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000 });

  it('names the flag of a bad value and exits 2', () => {
    const result = run('--max-payload', 'lots');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--max-payload must be an integer from 128 to 16777216 \(got "lots"\)/);
  });

  it('names an unknown flag and exits 2', () => {
    const result = run('--colour', 'blue');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /Unknown argument: colour/);
  });

  it('refuses a slow backend that does not exist', () => {
    const result = run('--slow-io', 'mysql');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /slow-io/);
  });

  it('explains every flag in --help', () => {
    const result = run('--help');
    assert.equal(result.status, 0);
    for (const flag of ['--port', '--host', '--max-payload', '--max-subscriptions', '--rate-limit', '--max-backpressure', '--idle-timeout', '--expire', '--publish-key', '--client-publish', '--slow-io', '--slow-io-url', '--slow-io-pool', '--shutdown-timeout', '--max-connections', '--max-connections-per-ip', '--max-json-depth', '--max-header-size', '--echo', '--public-stats', '--admin-port', '--admin-host', '--bench', '--allowed-origins', '--max-pending-requests', '--max-pending-bytes', '--max-kept-channels', '--max-kept-bytes']) {
      assert.match(result.stdout, new RegExp(`${flag}\\s+\\S`), flag);
    }
    assert.match(result.stdout, /at\s+most\s+--slow-io-pool\s+wait\s+at\s+once/);
  });

  it('says when the port is taken and exits 1', async () => {
    const net = await import('node:net');
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => blocker.once('listening', resolve));
    const port = (blocker.address() as import('node:net').AddressInfo).port;
    const result = spawnSync(process.execPath, [CLI, '--host', '127.0.0.1', '--port', String(port)], { encoding: 'utf8', timeout: 10_000 });
    blocker.close();
    assert.equal(result.status, 1);
    assert.match(result.stderr, new RegExp(`cannot listen on 127.0.0.1:${port} \\(--host, --port\\)`));
  });
});

describe('baseline CLI', () => {
  it('names a bad flag and exits 2', () => {
    const result = spawnSync(process.execPath, [BASELINE_CLI, '--port', 'x'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--port must be a whole number/);
  });
});
