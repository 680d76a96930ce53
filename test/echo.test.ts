/** `/echo`: the C10k sequence. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { eventually, startServer, type RunningServer } from './helpers/server.js';

describe('/echo', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  it('welcomes, echoes 3 rounds by default, says goodbye and closes with 1000', async () => {
    const client = await TestClient.open(`${s.ws}/echo`);
    assert.deepEqual(await client.next(), { event: 'welcome' });
    for (const text of ['one', '{"two":2}', 'three']) {
      client.send(text);
      assert.equal(await client.nextRaw(), text);
    }
    assert.deepEqual(await client.next(), { event: 'goodbye' });
    assert.equal((await client.closed).code, 1000);
  });

  it('echoes binary frames unchanged and honours rounds', async () => {
    const client = await TestClient.open(`${s.ws}/echo?rounds=1`);
    await client.next();
    const bytes = Buffer.from([0, 1, 2, 255, 254]);
    client.ws.send(bytes);
    assert.deepEqual(await client.nextRaw(), bytes);
    assert.deepEqual(await client.next(), { event: 'goodbye' });
    assert.equal((await client.closed).code, 1000);
  });

  it('echoes until the client closes with rounds=0', async () => {
    const client = await TestClient.open(`${s.ws}/echo?rounds=0`);
    await client.next();
    for (let i = 0; i < 50; i++) {
      client.send(`m${i}`);
      assert.equal(await client.nextRaw(), `m${i}`);
    }
    assert.equal((await client.close()).code, 1000);
    await eventually(async () => (await s.stats()).connections_by_endpoint.echo === 0);
  });

  it('refuses a bad rounds with HTTP 400', async () => {
    for (const rounds of ['-1', 'abc', '1.5', '99999999999']) {
      await assert.rejects(TestClient.open(`${s.ws}/echo?rounds=${rounds}`), /HTTP 400/, rounds);
    }
  });
});
