/**
 * deploy/nginx.conf with Debian's nginx on loopback, in front of two server processes bridged by the
 * local Redis: the echo sequence, a broadcast and POST /publish all go through it. The file is the
 * shipped one; only its ports are changed (and its pid and log files moved to a temporary folder).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TestClient } from './helpers/client.js';
import { spawnServer, type ServerChild } from './helpers/process.js';
import { onFreePort } from './helpers/ports.js';
import { eventually } from './helpers/server.js';
import { REDIS_URL, requireRedis } from './helpers/services.js';

const NGINX = '/usr/sbin/nginx';
const CONF = fileURLToPath(new URL('../../deploy/nginx.conf', import.meta.url));

describe('behind nginx (deploy/nginx.conf)', () => {
  const servers: ServerChild[] = [];
  let nginx: ChildProcess | null = null;
  let dir = '';
  let base = '';
  let tlsBase = '';
  let certificate: Buffer = Buffer.alloc(0);
  before(async () => {
    if (!existsSync(NGINX)) throw new Error(`nginx is required by this test and is not at ${NGINX}: apt-get install nginx (.ci/run does so when missing)`);
    await requireRedis();
    const prefix = `ngx${randomBytes(4).toString('hex')}`;
    for (let i = 0; i < 2; i++) servers.push(await spawnServer(['--redis', REDIS_URL, '--prefix', prefix, '--publish-key', 'k']));
    await eventually(async () => (await Promise.all(servers.map((s) => fetch(`${s.http}/health`)))).every((r) => r.status === 200), 10_000);
    dir = mkdtempSync(join(tmpdir(), 'nginx-'));
    // A certificate of the test's own for 127.0.0.1, made as the file's comment shows; clients trust it alone.
    const [crt, key] = [join(dir, 'pubsub.crt'), join(dir, 'pubsub.key')];
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', crt]);
    certificate = readFileSync(crt);
    // nginx on free ports (plain, TLS): a start that finds a port taken (it says so on stderr and exits) tries others.
    const port = await onFreePort(async (candidate) => {
      const conf = readFileSync(CONF, 'utf8')
        .replace('listen 8080;', `listen 127.0.0.1:${candidate};`)
        .replace('listen 8443 ssl;', `listen 127.0.0.1:${candidate + 1} ssl;`)
        .replace('ssl_certificate /etc/nginx/pubsub.crt;', `ssl_certificate ${crt};`)
        .replace('ssl_certificate_key /etc/nginx/pubsub.key;', `ssl_certificate_key ${key};`)
        .replace('server 127.0.0.1:9000;', `server 127.0.0.1:${servers[0].port};`)
        .replace('server 127.0.0.1:9001;', `server 127.0.0.1:${servers[1].port};`);
      assert.ok(conf.includes(String(servers[1].port)), 'the shipped file still has the ports this test replaces');
      const file = join(dir, 'nginx.conf');
      writeFileSync(file, conf);
      const user = process.getuid?.() === 0 ? 'user root; ' : '';
      const child = spawn(NGINX, ['-c', file, '-p', dir, '-g', `daemon off; master_process on; ${user}pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')};`], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (chunk) => (stderr += chunk));
      let exited = false;
      child.once('exit', () => (exited = true));
      // nginx names itself in Server (it never passes the upstream's), so another test's server on the port cannot pass for it.
      const throughNginx = async (): Promise<boolean> => {
        const res = await fetch(`http://127.0.0.1:${candidate}/health`).catch(() => null);
        return res?.status === 200 && (res.headers.get('server') ?? '').startsWith('nginx');
      };
      await eventually(async () => exited || (await throughNginx()), 10_000);
      if (exited) throw new Error(`nginx exited at start: ${stderr}`);
      nginx = child;
      return candidate;
    }, { span: 2 });
    base = `127.0.0.1:${port}`;
    tlsBase = `127.0.0.1:${port + 1}`;
  });
  after(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx!.once('exit', resolve));
      nginx.kill('SIGQUIT');
      await exited;
    }
    await Promise.all(servers.map((s) => s.kill()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the echo sequence through it', async () => {
    for (let i = 0; i < 4; i++) {
      const client = await TestClient.open(`ws://${base}/echo?rounds=3`);
      assert.deepEqual(await client.next(), { event: 'welcome' });
      for (let round = 0; round < 3; round++) {
        client.send(`round ${round}`);
        assert.equal(await client.nextRaw(), `round ${round}`);
      }
      assert.deepEqual(await client.next(), { event: 'goodbye' });
      assert.equal((await client.closed).code, 1000);
    }
  });

  it('terminates TLS: wss:// with the certificate, the echo sequence and a pub/sub round trip through it', async () => {
    const client = await TestClient.open(`wss://${tlsBase}/pubsub`, { ca: certificate });
    assert.equal((await client.next()).event, 'welcome');
    assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'tls' }, id: 1 })).event, 'subscribed');
    client.send({ action: 'publish', payload: { channel: 'tls', message: 'over TLS' }, id: 2 });
    const frames = [await client.next(), await client.next()].map((f) => f.event).sort();
    assert.deepEqual(frames, ['message', 'published']);
    await client.close();
    await assert.rejects(TestClient.open(`wss://${tlsBase}/pubsub`), /self-signed|certificate/i, 'a client that does not trust the certificate is refused');
  });

  it('keeps /stats and /metrics off the public side, even from servers that serve them (--public-stats)', async () => {
    for (const path of ['/stats', '/metrics']) {
      assert.equal((await fetch(`${servers[0].http}${path}`)).status, 200, `the server itself serves ${path} (--bench)`);
      const res = await fetch(`http://${base}${path}`);
      assert.equal(res.status, 404, `${path} through nginx`);
      assert.ok((res.headers.get('server') ?? '').startsWith('nginx'), 'nginx answered, not the server');
      await res.arrayBuffer();
    }
  });

  it('broadcasts to subscribers on both servers through it, and POST /publish reaches them', async () => {
    const subscribers = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const { client } = await TestClient.pubsub(`ws://${base}`);
        assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 })).event, 'subscribed');
        return client;
      }),
    );
    // nginx spreads the clients over both servers; each server has some of them.
    await eventually(async () => {
      const counts = await Promise.all(servers.map(async (s) => ((await (await fetch(`${s.http}/stats`)).json()) as { connections: number }).connections));
      return counts.every((n) => n > 0) && counts.reduce((a, b) => a + b) >= 8;
    });
    const { client: publisher } = await TestClient.pubsub(`ws://${base}`);
    for (let n = 1; n <= 20; n++) publisher.send({ action: 'publish', payload: { channel: 'news', message: { n } }, id: n });
    for (const sub of subscribers) {
      for (let n = 1; n <= 20; n++) assert.deepEqual(await sub.next(), { event: 'message', channel: 'news', message: { n } });
    }
    const res = await fetch(`http://${base}/publish`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ channel: 'news', message: 'via http' }) });
    assert.equal(res.status, 202);
    for (const sub of subscribers) assert.deepEqual(await sub.next(), { event: 'message', channel: 'news', message: 'via http' });
    await Promise.all([...subscribers, publisher].map((c) => c.close()));
  });
});
