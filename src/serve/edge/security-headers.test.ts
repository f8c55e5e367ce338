import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildTestServer, withServer } from '../../../test/support/serve.ts';
import { hostName, inlineScriptHashes, isAllowedHost } from './security-headers.ts';

test('hostName drops the port and the brackets of an IPv6 literal', () => {
  assert.equal(hostName('LocalHost:8080'), 'localhost');
  assert.equal(hostName('[::1]:8080'), '::1');
  assert.equal(hostName('example.com'), 'example.com');
});

test('localhost names and IP addresses always pass; other names only when allowed', () => {
  for (const name of ['localhost', 'app.localhost', '127.0.0.1', '::1', '10.1.2.3']) {
    assert.ok(isAllowedHost(name, []), name);
  }
  assert.ok(!isAllowedHost('evil.example', []));
  assert.ok(!isAllowedHost('localhost.evil.example', []));
  assert.ok(isAllowedHost('streamlines.example.com', ['streamlines.example.com']));
  assert.ok(!isAllowedHost('other.example.com', ['streamlines.example.com']));
  assert.ok(isAllowedHost('a.example.com', ['.example.com']));
  assert.ok(isAllowedHost('example.com', ['.example.com']));
  assert.ok(!isAllowedHost('badexample.com', ['.example.com']));
  assert.ok(isAllowedHost('anything', '*'));
});

test('a request naming a host the server does not answer to is 403 host_not_allowed', async () => {
  await withServer(buildTestServer({ config: { allowedHosts: ['markets.example'] } }), async ({ app }) => {
    const evil = await app.inject({ url: '/api/v1/symbols', headers: { host: 'evil.example' } });
    assert.equal(evil.statusCode, 403);
    assert.equal(evil.json().error.code, 'host_not_allowed');
    const allowed = await app.inject({ url: '/api/v1/symbols', headers: { host: 'markets.example:443' } });
    assert.equal(allowed.statusCode, 200);
    // Probes answer any host, for scrapers that reach the server by a service name.
    const health = await app.inject({ url: '/health', headers: { host: 'evil.example' } });
    assert.equal(health.statusCode, 200);
  });
});

test('responses carry the security headers, with the inline script hashed into the CSP', async () => {
  const root = await mkdtemp(join(tmpdir(), 'streamlines-web-'));
  try {
    await writeFile(join(root, 'index.html'), '<html><head><script>let theme = 1;</script></head></html>');
    const [hash] = inlineScriptHashes(root);
    assert.match(hash!, /^'sha256-[A-Za-z0-9+/]+=*'$/);
    const { app } = await buildTestServer({ webRoot: root });
    try {
      const response = await app.inject({ url: '/' });
      const csp = String(response.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.ok(csp.includes(`script-src 'self' ${hash}`), csp);
      assert.equal(response.headers['x-content-type-options'], 'nosniff');
      assert.equal(response.headers['referrer-policy'], 'no-referrer');
    } finally {
      await app.close();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
