import assert from 'node:assert/strict';
import { it, mock } from 'node:test';
import { HealthRegistry } from '../core/health.ts';
import { watchPauses } from './pause-watch.ts';

it('reports a pause of the process once, as a process_paused event, and not the usual turns', () => {
  mock.timers.enable({ apis: ['setInterval'] });
  let clock = 0;
  const health = new HealthRegistry();
  const stop = watchPauses(health, { everyMs: 500, thresholdMs: 3_000, now: () => clock });
  try {
    for (let turn = 0; turn < 10; turn++) {
      clock += 500 + 200; // a busy machine: late, but not paused
      mock.timers.tick(500);
    }
    assert.deepEqual(health.recentEvents(), []);
    // SIGSTOP for 6 s: the next turn comes 6.5 s after the last.
    clock += 6_500;
    mock.timers.tick(500);
    clock += 500;
    mock.timers.tick(500);
    const events = health.recentEvents();
    assert.equal(events.length, 1);
    assert.equal(events[0]?.code, 'process_paused');
    assert.equal(events[0]?.dependency, 'process');
    assert.match(events[0]?.message ?? '', /^the process did not run for 6\.0 s \(stopped with SIGSTOP/);
  } finally {
    stop();
    mock.timers.reset();
  }
});
