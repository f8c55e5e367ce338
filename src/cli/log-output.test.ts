import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import Fastify from 'fastify';
import { chooseLogFormat, createServerLogger, formatLogLine } from './log-output.ts';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk) => {
    text += chunk;
  });
  return { stream, text: () => text };
}

test('pretty on a terminal, JSON otherwise, and STREAMLINES_LOG_FORMAT decides when set', () => {
  assert.equal(chooseLogFormat({}, true), 'pretty');
  assert.equal(chooseLogFormat({}, false), 'json');
  assert.equal(chooseLogFormat({ STREAMLINES_LOG_FORMAT: 'json' }, true), 'json');
  assert.equal(chooseLogFormat({ STREAMLINES_LOG_FORMAT: 'Pretty' }, false), 'pretty');
  assert.equal(chooseLogFormat({ STREAMLINES_LOG_FORMAT: 'xml' }, false), 'json');
});

test('a JSON line becomes time, level, request, message and the other fields; errors keep their stack', () => {
  const time = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
  const line = JSON.stringify({
    level: 40,
    time,
    pid: 1,
    hostname: 'h',
    reqId: 'req-1',
    req: { method: 'GET', url: '/api/v1/stats' },
    msg: 'slow',
    feed: 'binance',
    attempts: 3,
  });
  assert.equal(
    formatLogLine(line, false),
    '03:04:05.678 WARN  GET /api/v1/stats slow feed=binance attempts=3',
  );
  const withError = formatLogLine(
    JSON.stringify({ level: 50, time, msg: 'boom', err: { stack: 'Error: x\n  at y' } }),
    false,
  );
  assert.equal(withError, '03:04:05.678 ERROR boom\n    Error: x\n      at y');
  assert.equal(formatLogLine('not json', false), 'not json');
});

test('HTTP requests log at debug: absent at info, present at debug, in both formats', async () => {
  for (const format of ['json', 'pretty'] as const) {
    for (const level of ['info', 'debug'] as const) {
      const out = capture();
      const app = Fastify({ loggerInstance: createServerLogger(level, format, out.stream) });
      app.get('/ping', async (request) => {
        request.log.info('handled ping');
        return { ok: true };
      });
      await app.inject({ method: 'GET', url: '/ping' });
      await app.close();
      await tick();
      const text = out.text();
      assert.match(text, /handled ping/, `${format}/${level}: other info lines stay`);
      const requestLines = text.split('\n').filter((line) => /incoming request|request completed/.test(line));
      assert.equal(requestLines.length, level === 'debug' ? 2 : 0, `${format}/${level}:\n${text}`);
      if (format === 'json') {
        for (const line of text.trim().split('\n')) JSON.parse(line);
        if (level === 'debug') assert.equal(JSON.parse(requestLines[0]!).level, 20);
      } else {
        assert.doesNotMatch(text, /^\{/m, 'no JSON on a terminal');
        if (level === 'debug') {
          assert.match(requestLines[0]!, /DEBUG GET \/ping incoming request/);
          assert.match(requestLines[1]!, /DEBUG 200 request completed \d+\.\d ms$/);
        }
      }
    }
  }
});
