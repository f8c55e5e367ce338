import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildTestServer } from '../../../test/support/serve.ts';
import { isClientRoute } from './web.ts';

async function fakeDist(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'streamlines-web-'));
  await mkdir(join(root, 'assets'));
  await writeFile(join(root, 'index.html'), '<!doctype html><title>Streamlines app</title>');
  await writeFile(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
  await writeFile(join(root, 'favicon.svg'), '<svg/>');
  return root;
}

test('serves the built app: page revalidated, hashed assets immutable, client routes get the page', async () => {
  const root = await fakeDist();
  const { app } = await buildTestServer({ webRoot: root });
  try {
    const page = await app.inject({ url: '/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /Streamlines app/);
    assert.equal(page.headers['cache-control'], 'no-cache');

    const asset = await app.inject({ url: '/assets/index-abc123.js' });
    assert.equal(asset.statusCode, 200);
    assert.equal(asset.body, 'console.log(1)');
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');

    const icon = await app.inject({ url: '/favicon.svg' });
    assert.equal(icon.statusCode, 200);
    assert.equal(icon.headers['cache-control'], 'no-cache');

    for (const url of ['/symbol/BTCUSDT', '/pipeline', '/alerts?kind=anomaly']) {
      const response = await app.inject({ url });
      assert.equal(response.statusCode, 200, url);
      assert.match(response.body, /Streamlines app/, url);
    }
  } finally {
    await app.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('the fallback never hides API or file 404s, and the API still answers', async () => {
  const root = await fakeDist();
  const { app } = await buildTestServer({ webRoot: root });
  try {
    for (const url of ['/api/v1/nope', '/assets/gone-123.js', '/missing.png']) {
      const response = await app.inject({ url });
      assert.equal(response.statusCode, 404, url);
      assert.equal(response.json().error.code, 'not_found', url);
    }
    assert.equal((await app.inject({ url: '/api/v1/symbols' })).statusCode, 200);
  } finally {
    await app.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('isClientRoute: app paths yes; API, server and file paths no', () => {
  assert.equal(isClientRoute('/symbol/BTCUSDT'), true);
  assert.equal(isClientRoute('/symbol/BTC-USD'), true);
  assert.equal(isClientRoute('/pipeline'), true);
  assert.equal(isClientRoute('/api/v1/x'), false);
  assert.equal(isClientRoute('/ws'), false);
  assert.equal(isClientRoute('/health'), false);
  assert.equal(isClientRoute('/logo.png'), false);
});
