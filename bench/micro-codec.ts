/** `make bench-micro`: parse and encode per second for the pure codec, token verification and the hook call (tinybench). */
import { SignJWT } from 'jose';
import { Bench } from 'tinybench';
import { callHook } from '../server/hooks.js';
import { TokenVerifier } from '../server/identity.js';
import { events, isJsonText, parseClientFrame } from '../server/protocol/index.js';

const publishFrame = JSON.stringify({ action: 'publish', payload: { channel: 'news', message: { text: 'hello world', n: 42 } }, id: 7 });
const subscribeFrame = '{"action":"subscribe","payload":{"channel":"user:john:chat"},"id":1}';
const messageJson = '{"text":"hello world","n":42}';
/** What bench-redis publishes, as a subscribing instance gets it from Redis. */
const bridged = '{"c":0,"t":1764034567123456,"p":""}';

// Each timed call runs the operation BATCH times: one operation takes 100 ns to 6 us, about what timing
// a single call costs, and tinybench keeps a sample per call (millions per task made a 15-second run
// take a minute, most of it sorting samples).
const BATCH = 1024; // a multiple of the verifications in flight below
const bench = new Bench({ time: 1000, warmupTime: 200 });
const add = (name: string, op: () => unknown): void => {
  bench.add(name, () => {
    for (let i = 0; i < BATCH; i++) op();
  });
};
add('parse publish', () => parseClientFrame(publishFrame));
add('parse subscribe (user channel)', () => parseClientFrame(subscribeFrame));
add('parse bad json', () => parseClientFrame('{nope'));
add('check bridged payload: JSON.parse', () => JSON.parse(bridged));
add('check bridged payload: isJsonText', () => isJsonText(bridged));
add('encode message', () => events.message('news', messageJson));
add('encode subscribed ack', () => events.subscribed('news', 1));
add('encode welcome', () => events.welcome('abc123', null, 'sess-xyz'));

// What every upgrade with a token costs (jose, HS256 through WebCrypto): asynchronous, so timed apart.
const secret = 'a-benchmark-secret-of-at-least-32-bytes';
const verifier = new TokenVerifier(secret);
const token = await new SignJWT({ sub: 'john', sid: 's1', channels: ['user:john:*'] })
  .setProtectedHeader({ alg: 'HS256' })
  .setExpirationTime('1h')
  .sign(new TextEncoder().encode(secret));
// As a server meets them in a connect burst: 64 in flight at a time (WebCrypto's HMAC runs off the main thread).
const IN_FLIGHT = 64;
bench.add('verify HS256 token (jose)', async () => {
  for (let i = 0; i < BATCH; i += IN_FLIGHT) await Promise.all(Array.from({ length: IN_FLIGHT }, () => verifier.verify(token)));
});

// What a hook costs the server around the application's own code: callHook (a timer for
// --hook-timeout, a race, an outcome object) over a synchronous hook that does nothing, awaited one
// at a time, as a connection's queue runs them.
const noHook = (): boolean => true;
bench.add('call a hook (callHook, empty sync hook)', async () => {
  for (let i = 0; i < BATCH; i++) await callHook(noHook, 5000);
});

// Progress on stderr: a line as each task finishes, so a minute of work never looks like a hang.
let finished = 0;
console.error(`bench-micro: ${bench.tasks.length} tasks, about ${((bench.tasks.length * 1200) / 1000).toFixed(0)} s of measuring plus their warm-ups`);
for (const task of bench.tasks) {
  task.addEventListener('complete', () => console.error(`bench-micro: ${++finished}/${bench.tasks.length} ${task.name}: ${Math.round((task.result?.throughput?.mean ?? 0) * BATCH)} ops/s`));
}
const started = Date.now();
await bench.run();
console.error(`bench-micro: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`node ${process.version}, codec micro-benchmark (ops/s, higher is better)`);
console.table(
  bench.tasks.map((task) => ({
    task: task.name,
    'ops/s': Math.round((task.result?.throughput?.mean ?? 0) * BATCH),
    'mean ns': Math.round(((task.result?.latency?.mean ?? 0) * 1e6) / BATCH),
    'timed calls': task.result?.latency?.samples?.length,
  })),
);
