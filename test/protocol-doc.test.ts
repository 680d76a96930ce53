/**
 * docs/protocol.md is enough to write a client: its examples are read from the document itself and
 * played against a real server. Every request example gets exactly the reply example with its id, the
 * welcome has the fields and types shown, the message, cached message, error and goodbye examples are
 * what a client receives, and the /echo exchange runs as drawn.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { REFUSALS } from '../server/refusals.js';
import { TestClient } from './helpers/client.js';
import { startServer } from './helpers/server.js';

const DOC = readFileSync(fileURLToPath(new URL('../../docs/protocol.md', import.meta.url)), 'utf8');

/** The frames of the document's ```json blocks, block by block. */
const blocks = [...DOC.matchAll(/^```json\n([\s\S]*?)^```/gm)].map((m) => m[1].trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>));
const [[welcome], requests, replies] = blocks;

describe('docs/protocol.md, played against the server', () => {
  it('has its three example blocks: the welcome, the requests, the replies and events', () => {
    assert.equal(welcome.event, 'welcome');
    assert.deepEqual(requests.map((r) => r.action), ['subscribe', 'unsubscribe', 'publish', 'ping', 'slow']);
    assert.deepEqual([...new Set(replies.map((r) => r.event))], ['subscribed', 'unsubscribed', 'published', 'pong', 'slow', 'message', 'error', 'goodbye']);
  });

  it('answers every request example with the reply example of the same id, and sends the events shown', async () => {
    const server = await startServer({ expire: 30 });
    try {
      const a = await TestClient.open(`${server.ws}/pubsub`);
      const first = await a.next();
      assert.deepEqual(Object.keys(first), Object.keys(welcome), 'the welcome has the fields shown, in that order');
      for (const key of Object.keys(welcome)) assert.equal(typeof first[key], typeof welcome[key], `welcome.${key} is a ${typeof welcome[key]}`);
      assert.match(first.connection, /^[0-9a-f]{8}[0-9a-z]+$/, 'connection: 8 hex digits, then a base-36 counter');
      assert.equal(first.session.length, 16, 'session: 16 characters');

      for (const request of requests) {
        const expected = replies.find((reply) => reply.id === request.id);
        assert.ok(expected, `the document shows the reply to ${JSON.stringify(request)}`);
        a.send(request);
        assert.deepEqual(await a.next(request.action === 'slow' ? request.payload.ms + 3000 : 3000), expected);
      }

      // The publish above (id 3) went to the cache: a new subscriber gets it marked, then live ones are not.
      const [live, cached] = replies.filter((reply) => reply.event === 'message');
      const b = await TestClient.open(`${server.ws}/pubsub`);
      await b.next();
      assert.deepEqual(await b.request(requests[0]), replies[0]);
      assert.deepEqual(await b.next(), cached);
      a.send({ action: 'publish', payload: requests[2].payload }); // without an id: no ack, as the document says
      assert.deepEqual(await b.next(), live);
      assert.ok(await a.silentFor(200), 'a publish without id gets no ack');

      const error = replies.find((reply) => reply.event === 'error')!;
      assert.deepEqual(await a.request('frame that is not JSON'), error);

      const goodbye = replies.find((reply) => reply.event === 'goodbye')!;
      const closing = server.close();
      assert.deepEqual(await b.next(), goodbye);
      assert.equal((await b.closed).code, 1001);
      await closing;
    } finally {
      await server.close();
    }
  });

  it('runs the /echo exchange as drawn', async () => {
    const drawing = /```text\n([\s\S]*?)```/.exec(DOC.slice(DOC.indexOf('## `/echo`')))![1];
    const sent = [...drawing.matchAll(/-- (\S+) -->/g)].map((m) => m[1]).filter((f) => !f.startsWith('upgrade'));
    const received = [...drawing.matchAll(/<-- (.+)$/gm)].map((m) => m[1].trim());
    const path = /upgrade (\S+) -->/.exec(drawing)![1];
    const server = await startServer();
    try {
      const client = await TestClient.open(`${server.ws}${path}`);
      const got: string[] = [String(await client.nextRaw())];
      for (const frame of sent) {
        client.send(frame);
        got.push(String(await client.nextRaw()));
      }
      got.push(String(await client.nextRaw()));
      got.push(`close ${(await client.closed).code}`);
      assert.deepEqual(got, received);
    } finally {
      await server.close();
    }
  });

  it('names every reason the server counts in /stats refused, and no other', async () => {
    const row = /^\| `refused` \| upgrades refused: (.*) \|$/m.exec(DOC);
    assert.ok(row, 'the /stats table has its refused row');
    const named = [...row[1].matchAll(/`(\w+)`/g)].map((m) => m[1]);
    const server = await startServer();
    try {
      const counted = Object.keys((await server.stats()).refused as Record<string, number>);
      assert.deepEqual(named.sort(), counted.sort());
      assert.deepEqual(counted.sort(), [...REFUSALS].sort());
    } finally {
      await server.close();
    }
  });
});
