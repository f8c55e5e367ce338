import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeView } from '../../../test/support/serve.ts';
import { LiveSource } from './live-source.ts';

describe('LiveSource', () => {
  test('listens to the pipeline only while someone is subscribed', async () => {
    const view = new FakeView();
    const live = new LiveSource(view);
    assert.equal(view.listeners.size, 0, 'no subscription: no listener, so publishing costs nothing');
    const a = live.subscribe('ticks:AAA');
    const b = live.subscribe('ticks:AAA');
    assert.equal(view.listeners.size, 1, 'one listener however many subscriptions');
    await a.return();
    assert.equal(view.listeners.size, 1);
    await b.return();
    assert.equal(view.listeners.size, 0, 'the last unsubscribe detaches');
    assert.deepEqual(live.stats(), { subscriptions: 0, channels: 0, queued: 0, dropped: 0 });
  });

  test('delivers per channel, in order, to every subscriber of that channel only', async () => {
    const view = new FakeView();
    const live = new LiveSource(view);
    const ticks = live.subscribe('ticks:AAA');
    const other = live.subscribe('ticks:BBB');
    const pending = ticks.next();
    view.emit('ticks:AAA', { n: 1 });
    view.emit('ticks:AAA', { n: 2 });
    view.emit('candles:AAA:1m', { n: 3 });
    assert.deepEqual(await pending, { value: { n: 1 }, done: false }, 'a waiting reader gets it at once');
    assert.deepEqual(await ticks.next(), { value: { n: 2 }, done: false });
    assert.equal(ticks.size, 0);
    assert.equal(other.size, 0, 'BBB saw nothing of AAA');
    live.close();
  });

  test('a reader that does not keep up loses new messages, counted, and never queues more than the bound', async () => {
    const view = new FakeView();
    const live = new LiveSource(view, { maxQueuedMessages: 3 });
    const slow = live.subscribe('alerts');
    for (let n = 1; n <= 10; n++) view.emit('alerts', { n });
    assert.equal(slow.size, 3);
    assert.equal(slow.dropped, 7);
    assert.deepEqual(live.stats(), { subscriptions: 1, channels: 1, queued: 3, dropped: 7 });
    // The oldest are kept (drop-newest, as the /ws hub does), and the ring wraps correctly.
    assert.deepEqual((await slow.next()).value, { n: 1 });
    view.emit('alerts', { n: 11 });
    const values = [(await slow.next()).value, (await slow.next()).value, (await slow.next()).value];
    assert.deepEqual(values, [{ n: 2 }, { n: 3 }, { n: 11 }]);
    live.close();
  });

  test('a filter skips messages without counting them as dropped', () => {
    const view = new FakeView();
    const live = new LiveSource(view, { maxQueuedMessages: 1 });
    const onlyA = live.subscribe('alerts', (data) => (data as { symbol: string }).symbol === 'A');
    view.emit('alerts', { symbol: 'B' });
    view.emit('alerts', { symbol: 'A' });
    assert.equal(onlyA.size, 1);
    assert.equal(live.stats().dropped, 0);
    live.close();
  });

  test('closing ends a pending read and every subscription', async () => {
    const view = new FakeView();
    const live = new LiveSource(view);
    const queue = live.subscribe('ticks:AAA');
    const pending = queue.next();
    live.close();
    assert.deepEqual(await pending, { value: undefined, done: true });
    assert.deepEqual(await queue.next(), { value: undefined, done: true });
    assert.equal(view.listeners.size, 0);
  });

  test('refuses a bound that is not a positive integer', () => {
    assert.throws(() => new LiveSource(new FakeView(), { maxQueuedMessages: 0 }), RangeError);
  });
});
