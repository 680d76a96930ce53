/** The last-message cache (`--expire`). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { startServer } from './helpers/server.js';

describe('cache', () => {
  it('gives a new subscriber the last message right after subscribed, until it expires', async (t) => {
    const s = await startServer({ expire: 1 });
    const { client: pub } = await TestClient.pubsub(s.ws);
    pub.send({ action: 'publish', payload: { channel: 'weather', message: { t: 1 } } });
    await pub.request({ action: 'publish', payload: { channel: 'weather', message: { t: 2 } }, id: 'p' });
    const { client: late } = await TestClient.pubsub(s.ws);
    assert.deepEqual(await late.request({ action: 'subscribe', payload: { channel: 'weather' }, id: 1 }), { event: 'subscribed', channel: 'weather', id: 1 });
    assert.deepEqual(await late.next(), { event: 'message', channel: 'weather', message: { t: 2 }, cached: true });
    // The cache reads Date.now(): the clock is moved past the expiry instead of waiting for it.
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    t.mock.timers.tick(1100);
    const { client: later } = await TestClient.pubsub(s.ws);
    await later.request({ action: 'subscribe', payload: { channel: 'weather' } });
    assert.equal(await later.silentFor(150), true);
    await Promise.all([pub.close(), late.close(), later.close()]);
    await s.close();
  });

  it('keeps nothing with --expire 0', async () => {
    const s = await startServer({ expire: 0 });
    const { client: pub } = await TestClient.pubsub(s.ws);
    await pub.request({ action: 'publish', payload: { channel: 'weather', message: 1 }, id: 'p' });
    const { client: late } = await TestClient.pubsub(s.ws);
    await late.request({ action: 'subscribe', payload: { channel: 'weather' } });
    assert.equal(await late.silentFor(150), true);
    await Promise.all([pub.close(), late.close()]);
    await s.close();
  });
});
