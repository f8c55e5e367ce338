import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { buildTestServer, type Json } from '../../../test/support/serve.ts';
import { createApiKey, generateApiKey } from './keys.ts';
import { redactUrl } from './redact.ts';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** A server over the seeded store with a read key and an admin key created in it. */
async function setup(requireKeyForReads: boolean, logger?: object) {
  const { app, store } = await buildTestServer({
    config: { auth: { requireKeyForReads }, rateLimit: { enabled: false } },
    ...(logger === undefined ? {} : { logger }),
  });
  const reader = await createApiKey(store, { name: 'dashboard', role: 'read' });
  const admin = await createApiKey(store, { name: 'ops', role: 'admin' });
  return { app, store, readKey: reader.key, adminKey: admin.key, readId: reader.record.id };
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** Opens a WebSocket; resolves 'open', or the HTTP status the upgrade was refused with. */
function connect(url: string): Promise<{ socket: WebSocket; status: number | 'open' }> {
  const socket = new WebSocket(url);
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve({ socket, status: 'open' }));
    socket.once('unexpected-response', (_request, response) => {
      resolve({ socket, status: response.statusCode ?? 0 });
      response.resume();
      socket.terminate();
    });
    socket.once('error', reject);
  });
}

describe('reads open by default', () => {
  test('reads need no key; a key that is given must be valid', async () => {
    const { app, readKey } = await setup(false);
    try {
      assert.equal((await app.inject({ url: '/api/v1/symbols' })).statusCode, 200);
      assert.equal((await app.inject({ url: '/api/v1/symbols', headers: bearer(readKey) })).statusCode, 200);
      const bad = await app.inject({ url: '/api/v1/symbols', headers: bearer(`${readKey.slice(0, -1)}x`) });
      assert.equal(bad.statusCode, 401);
      assert.equal(bad.json().error.code, 'unauthorized');
      assert.equal(bad.headers['www-authenticate'], 'Bearer error="invalid_token"');
      const basic = await app.inject({
        url: '/api/v1/symbols',
        headers: { authorization: 'Basic dXNlcjpwdw==' },
      });
      assert.equal(basic.statusCode, 401);
      assert.match(basic.json().error.message, /Bearer KEY/);
      // The admin routes still need an admin key.
      assert.equal((await app.inject({ url: '/api/v1/admin/keys' })).statusCode, 401);
    } finally {
      await app.close();
    }
  });
});

describe('requireKeyForReads', () => {
  test('the API needs a key; probes, metrics, dashboard and docs stay open', async () => {
    const { app, readKey, adminKey } = await setup(true);
    try {
      const none = await app.inject({ url: '/api/v1/symbols' });
      assert.equal(none.statusCode, 401);
      assert.equal(none.json().error.code, 'unauthorized');
      assert.equal(none.headers['www-authenticate'], 'Bearer');
      // Encoding the path does not dodge the check: it is made on the matched route.
      assert.equal((await app.inject({ url: '/%61pi/v1/symbols' })).statusCode, 401);
      // A query-string key is refused on REST, with a hint.
      const query = await app.inject({ url: `/api/v1/symbols?apiKey=${readKey}` });
      assert.equal(query.statusCode, 401);
      assert.match(query.json().error.message, /only on WebSocket upgrades/);

      assert.equal((await app.inject({ url: '/api/v1/symbols', headers: bearer(readKey) })).statusCode, 200);
      assert.equal((await app.inject({ url: '/api/v1/symbols', headers: bearer(adminKey) })).statusCode, 200);
      for (const url of ['/health', '/ready', '/metrics', '/', '/openapi.json']) {
        const response = await app.inject({ url });
        assert.notEqual(response.statusCode, 401, `${url} must stay open`);
        assert.ok(response.statusCode < 500, `${url} answered ${response.statusCode}`);
      }
      assert.equal((await app.inject({ url: '/graphql?query={__typename}' })).statusCode, 401);
      assert.equal((await app.inject({ url: '/ws' })).statusCode, 401);
    } finally {
      await app.close();
    }
  });

  test('a WebSocket connects with ?apiKey=, not without, and is closed when its key is revoked', async () => {
    const { app, readKey, adminKey, readId } = await setup(true);
    try {
      const base = await listen(app);
      assert.equal((await connect(`${base}/ws`)).status, 401);
      assert.equal((await connect(`${base}/ws?apiKey=${readKey.slice(0, -2)}zz`)).status, 401);

      const { socket, status } = await connect(`${base}/ws?apiKey=${encodeURIComponent(readKey)}`);
      assert.equal(status, 'open');
      // The socket works: an invalid frame gets the hub's error reply.
      socket.send('not json');
      const [reply] = await once(socket, 'message');
      assert.equal(JSON.parse(String(reply)).error.code, 'invalid_json');

      const closed = once(socket, 'close');
      const revoke = await app.inject({
        method: 'DELETE',
        url: `/api/v1/admin/keys/${readId}`,
        headers: bearer(adminKey),
      });
      assert.equal(revoke.statusCode, 200);
      await closed;
      assert.equal((await connect(`${base}/ws?apiKey=${readKey}`)).status, 401);
    } finally {
      await app.close();
    }
  });
});

describe('admin key routes', () => {
  test('need an admin key: 401 without, 403 with a read key', async () => {
    const { app, readKey } = await setup(false);
    try {
      const body = { name: 'x', role: 'read' };
      assert.equal((await app.inject({ method: 'POST', url: '/api/v1/admin/keys', body })).statusCode, 401);
      const forbidden = await app.inject({
        method: 'POST',
        url: '/api/v1/admin/keys',
        body,
        headers: bearer(readKey),
      });
      assert.equal(forbidden.statusCode, 403);
      assert.equal(forbidden.json().error.code, 'forbidden');
      assert.equal(
        (await app.inject({ url: '/api/v1/admin/keys', headers: bearer(readKey) })).statusCode,
        403,
      );
      assert.equal(
        (await app.inject({ method: 'DELETE', url: '/api/v1/admin/keys/x', headers: bearer(readKey) }))
          .statusCode,
        403,
      );
    } finally {
      await app.close();
    }
  });

  test('create, list and revoke; a revoked key stops working at once', async () => {
    const { app, store, adminKey } = await setup(true);
    try {
      const created = await app.inject({
        method: 'POST',
        url: '/api/v1/admin/keys',
        body: { name: 'robot', role: 'read' },
        headers: bearer(adminKey),
      });
      assert.equal(created.statusCode, 201);
      assert.equal(created.headers['cache-control'], 'no-store');
      const { id, key, name, role } = created.json();
      assert.deepEqual([name, role], ['robot', 'read']);
      assert.match(key, new RegExp(`^sl_${id}_[A-Za-z0-9_-]{43}$`));
      assert.equal((await app.inject({ url: '/api/v1/symbols', headers: bearer(key) })).statusCode, 200);

      const listed = await app.inject({ url: '/api/v1/admin/keys', headers: bearer(adminKey) });
      assert.equal(listed.statusCode, 200);
      // Keys made in the same ms are ordered by their random id: compare by name.
      assert.deepEqual(
        listed
          .json()
          .keys.map((each: Json) => [each.name, each.role, each.revokedAt])
          .sort((a: string[], b: string[]) => a[0]!.localeCompare(b[0]!)),
        [
          ['dashboard', 'read', null],
          ['ops', 'admin', null],
          ['robot', 'read', null],
        ],
      );
      assert.ok(!listed.body.includes(key.split('_').pop()), 'the list never holds a secret');
      assert.ok(!listed.body.includes('hash'));

      const revoked = await app.inject({
        method: 'DELETE',
        url: `/api/v1/admin/keys/${id}`,
        headers: bearer(adminKey),
      });
      assert.deepEqual(revoked.json(), { id, revoked: true });
      // The key was verified (and cached) a moment ago: revocation through the API still applies at once.
      const after = await app.inject({ url: '/api/v1/symbols', headers: bearer(key) });
      assert.equal(after.statusCode, 401);
      assert.equal((await store.listKeys()).find((each) => each.id === id)?.revokedAt !== null, true);
      const again = await app.inject({
        method: 'DELETE',
        url: `/api/v1/admin/keys/${id}`,
        headers: bearer(adminKey),
      });
      assert.equal(again.statusCode, 404);
      assert.equal(again.json().error.code, 'not_found');
    } finally {
      await app.close();
    }
  });

  test('a bad name or role is 400 invalid_parameter and creates nothing', async () => {
    const { app, store, adminKey } = await setup(false);
    try {
      for (const body of [
        { name: 'x', role: 'root' },
        { role: 'read' },
        { name: '', role: 'admin' },
        ['x'],
      ]) {
        const response = await app.inject({
          method: 'POST',
          url: '/api/v1/admin/keys',
          body,
          headers: bearer(adminKey),
        });
        assert.equal(response.statusCode, 400, JSON.stringify(body));
        assert.equal(response.json().error.code, 'invalid_parameter');
      }
      assert.equal((await store.listKeys()).length, 2);
    } finally {
      await app.close();
    }
  });
});

describe('no secret in the log', () => {
  test('neither the Authorization header nor ?apiKey= reaches the log', async () => {
    let output = '';
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        output += String(chunk);
        callback();
      },
    });
    const { app, readKey, adminKey } = await setup(true, { level: 'trace', stream });
    // The secret is the last 43 characters of a key (32 bytes in base64url).
    const secrets = [readKey, adminKey].map((key) => key.slice(-43));
    let createdKey = '';
    try {
      const base = await listen(app);
      await app.inject({ url: '/api/v1/symbols', headers: bearer(readKey) });
      await app.inject({ url: `/api/v1/symbols?apiKey=${readKey}` });
      await app.inject({ url: '/api/v1/symbols', headers: bearer(`${readKey.slice(0, -1)}x`) });
      const created = await app.inject({
        method: 'POST',
        url: '/api/v1/admin/keys',
        body: { name: 'robot', role: 'read' },
        headers: bearer(adminKey),
      });
      createdKey = created.json().key;
      const { socket, status } = await connect(`${base}/ws?apiKey=${readKey}`);
      assert.equal(status, 'open');
      socket.close();
      await connect(`${base}/ws?token=1&APIKEY=${readKey}`);
    } finally {
      await app.close();
    }
    // The log did record those requests, so the absence below means something.
    assert.match(output, /"url":"\/ws\?apiKey=\[redacted\]"/);
    assert.match(output, /"url":"\/api\/v1\/symbols\?apiKey=\[redacted\]"/);
    for (const secret of [...secrets, createdKey.slice(-43)]) {
      assert.equal(secret.length, 43);
      assert.ok(!output.includes(secret), 'a key secret reached the log');
    }
  });

  test('redactUrl removes apiKey however it is cased or encoded, and anything shaped like a key', () => {
    const key = `sl_${'a'.repeat(16)}_${'B'.repeat(43)}`;
    assert.equal(redactUrl(`/ws?apiKey=${key}&x=1`), '/ws?apiKey=[redacted]&x=1');
    assert.equal(redactUrl(`/ws?x=1&api%4Bey=${key}`), '/ws?x=1&api%4Bey=[redacted]');
    assert.equal(redactUrl(`/ws?APIKEY=abc`), '/ws?APIKEY=[redacted]');
    assert.equal(redactUrl(`/api/v1/latest/${key}`), `/api/v1/latest/sl_${'a'.repeat(16)}_[redacted]`);
    assert.equal(redactUrl('/api/v1/symbols?limit=5'), '/api/v1/symbols?limit=5');
  });
});

describe('invalid keys and rate limiting', () => {
  test('made-up keys are throttled per address before they are checked', async () => {
    const { app } = await buildTestServer({
      config: { auth: { maxFailedKeysPerMinute: 5 }, rateLimit: { enabled: false } },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        // Well-formed but unknown keys: each one would cost a hash and a store lookup.
        const { key } = generateApiKey();
        const response = await app.inject({
          url: '/api/v1/symbols',
          headers: { authorization: `Bearer ${key}` },
        });
        statuses.push(response.statusCode);
      }
      assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
      // Requests without a key are not affected: reads are open on the default.
      assert.equal((await app.inject({ url: '/api/v1/symbols' })).statusCode, 200);
    } finally {
      await app.close();
    }
  });
});
