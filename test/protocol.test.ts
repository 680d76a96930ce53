/** The pure codec: no sockets. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { events, maySubscribe, parseChannel, parseClientFrame, redisName } from '../server/protocol/index.js';

describe('parseClientFrame', () => {
  it('parses every action with and without id', () => {
    assert.deepEqual(parseClientFrame('{"action":"ping","id":4}'), { action: 'ping', id: 4 });
    assert.deepEqual(parseClientFrame('{"action":"ping"}'), { action: 'ping', id: null });
    const sub = parseClientFrame('{"action":"subscribe","payload":{"channel":"news"},"id":"a"}');
    assert.deepEqual(sub, { action: 'subscribe', channel: { name: 'news', facility: { kind: 'broadcast' } }, joinLeave: false, id: 'a' });
    const withEvents = parseClientFrame('{"action":"subscribe","payload":{"channel":"news","join_leave":true}}');
    assert.deepEqual(withEvents, { action: 'subscribe', channel: { name: 'news', facility: { kind: 'broadcast' } }, joinLeave: true, id: null });
    const presence = parseClientFrame('{"action":"presence","payload":{"channel":"room"},"id":4}');
    assert.deepEqual(presence, { action: 'presence', channel: { name: 'room', facility: { kind: 'broadcast' } }, id: 4 });
    const unsub = parseClientFrame('{"action":"unsubscribe","payload":{"channel":"news"}}');
    assert.equal(unsub.action, 'unsubscribe');
    const pub = parseClientFrame('{"action":"publish","payload":{"channel":"news","message":{"x":[1,"é"]}},"id":3}');
    assert.equal(pub.action, 'publish');
    assert.equal(pub.action === 'publish' && pub.messageJson, '{"x":[1,"é"]}');
    assert.deepEqual(parseClientFrame('{"action":"slow","payload":{"ms":5000},"id":5}'), { action: 'slow', ms: 5000, id: 5 });
  });

  it('accepts null and falsy messages', () => {
    for (const message of [null, 0, false, '']) {
      const pub = parseClientFrame(JSON.stringify({ action: 'publish', payload: { channel: 'c', message } }));
      assert.equal(pub.action === 'publish' && pub.messageJson, JSON.stringify(message));
    }
  });

  const errors: [string, string, string | number | null][] = [
    ['not json', 'bad_json', null],
    ['[1,2]', 'bad_json', null],
    ['"text"', 'bad_json', null],
    ['null', 'bad_json', null],
    ['{"action":"ping","id":{"x":1}}', 'bad_request', null],
    ['{"id":1}', 'bad_request', 1],
    ['{"action":"subscribe","id":2}', 'bad_request', 2],
    ['{"action":"subscribe","payload":{"channel":5},"id":2}', 'bad_request', 2],
    ['{"action":"publish","payload":{"channel":"news"},"id":3}', 'bad_request', 3],
    ['{"action":"slow","payload":{"ms":0}}', 'bad_request', null],
    ['{"action":"slow","payload":{"ms":1.5}}', 'bad_request', null],
    ['{"action":"slow","payload":{"ms":60001}}', 'bad_request', null],
    ['{"action":"slow","payload":{"ms":"5"}}', 'bad_request', null],
    ['{"action":"dance","id":"d"}', 'unknown_action', 'd'],
    ['{"action":"subscribe","payload":{"channel":"a b"}}', 'bad_channel', null],
    ['{"action":"subscribe","payload":{"channel":""}}', 'bad_channel', null],
    ['{"action":"subscribe","payload":{"channel":"user:john"}}', 'bad_channel', null],
  ];
  for (const [frame, code, id] of errors) {
    it(`answers ${frame} with ${code}`, () => {
      const result = parseClientFrame(frame);
      assert.equal(result.action, 'error');
      assert.equal(result.action === 'error' && result.code, code);
      assert.equal(result.action === 'error' && result.id, id);
    });
  }
});

describe('channels', () => {
  it('follows the grammar', () => {
    assert.deepEqual(parseChannel('a'), { kind: 'broadcast' });
    assert.deepEqual(parseChannel('A-z_0.9:@x'), { kind: 'broadcast' });
    assert.deepEqual(parseChannel('x'.repeat(200)), { kind: 'broadcast' });
    assert.equal(parseChannel('x'.repeat(201)), null);
    assert.equal(parseChannel('é'), null);
    assert.equal(parseChannel('a/b'), null);
  });

  it('reads user and session facilities', () => {
    assert.deepEqual(parseChannel('user:john:chat'), { kind: 'user', user: 'john', facility: 'chat' });
    assert.deepEqual(parseChannel('session:abc:chat:x'), { kind: 'session', session: 'abc', facility: 'chat:x' });
    assert.equal(parseChannel('user::chat'), null);
    assert.equal(parseChannel('session:abc:'), null);
  });

  it('lets only the owner subscribe', () => {
    const john = { user: 'john', session: 's1' };
    const anonymous = { user: null, session: 's2' };
    assert.equal(maySubscribe(parseChannel('user:john:chat')!, john), true);
    assert.equal(maySubscribe(parseChannel('user:john:chat')!, anonymous), false);
    assert.equal(maySubscribe(parseChannel('session:s2:chat')!, anonymous), true);
    assert.equal(maySubscribe(parseChannel('session:s1:chat')!, anonymous), false);
    assert.equal(maySubscribe(parseChannel('news')!, anonymous), true);
  });

  it('maps to the websocket-redis layout', () => {
    assert.equal(redisName('news', parseChannel('news')!), 'broadcast:news');
    assert.equal(redisName('user:john:chat', parseChannel('user:john:chat')!), 'user:john:chat');
    assert.equal(redisName('session:abc:chat', parseChannel('session:abc:chat')!, 'P'), 'P:session:abc:chat');
  });
});

describe('events', () => {
  it('encodes acks with an id only when given', () => {
    assert.deepEqual(JSON.parse(events.subscribed('news', 1)), { event: 'subscribed', channel: 'news', id: 1 });
    assert.deepEqual(JSON.parse(events.subscribed('news', null)), { event: 'subscribed', channel: 'news' });
    assert.deepEqual(JSON.parse(events.pong('x"y')), { event: 'pong', id: 'x"y' });
    assert.deepEqual(JSON.parse(events.slowDone(5000, 5)), { event: 'slow', ms: 5000, id: 5 });
  });

  it('splices the message JSON in once', () => {
    assert.deepEqual(JSON.parse(events.message('news', '{"a":1}')), { event: 'message', channel: 'news', message: { a: 1 } });
    assert.deepEqual(JSON.parse(events.message('news', '2', true)), { event: 'message', channel: 'news', message: 2, cached: true });
  });

  it('always gives errors an id', () => {
    assert.deepEqual(JSON.parse(events.error('bad_json', 'm', null)), { event: 'error', code: 'bad_json', message: 'm', id: null });
  });
});
