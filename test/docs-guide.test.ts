/**
 * docs/guide.md's commands: `make example` starts an example where the guide says, and it answers as
 * the guide says. (test/examples.test.ts checks every example in depth.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { doc, docPlaces, serve } from './helpers/docs.js';

const GUIDE = 'docs/guide.md';
const READY = /^listening on ws:\/\/127\.0\.0\.1:(\d+)\/pubsub$/m;

describe('docs/guide.md: make example', () => {
  const places = docPlaces();

  it('make example EX=simplest serves on 9000, and EX=receiver on the PORT given', async () => {
    const simplest = await serve(doc(GUIDE, 'make example EX=simplest').command, places, READY);
    try {
      assert.equal(Number(READY.exec(simplest.output())![1]), places.base, 'port 9000 of the guide');
      const { client } = await TestClient.pubsub(`ws://127.0.0.1:${places.base}`);
      assert.deepEqual(await client.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 }), { event: 'subscribed', channel: 'news', id: 1 });
      await client.close();
    } finally {
      await simplest.interrupt();
    }
    const receiver = await serve(doc(GUIDE, 'make example EX=receiver PORT=9100').command, places, READY);
    try {
      assert.equal(Number(READY.exec(receiver.output())![1]), places.base + 100, 'port 9100 of the guide');
      const { client } = await TestClient.pubsub(`ws://127.0.0.1:${places.base + 100}`);
      const answer = await client.request({ action: 'rpc', payload: { method: 'echo', params: { a: 1 } }, id: 1 });
      assert.deepEqual(answer, { event: 'result', result: { a: 1 }, id: 1 });
      await client.close();
    } finally {
      await receiver.interrupt();
    }
  });
});
