/**
 * Preloaded into the CLI by `bench/cli-stages.ts ws --loop-blocks`: a 1 ms timer that prints, for
 * every turn of the event loop that kept it waiting over 8 ms, one line on stdout:
 * `loop-block <wall ms> <main-thread CPU ms> <start µs> <end µs>` (the times on the monotonic clock
 * of a `--cpu-prof` profile, to find what ran). A gap whose CPU is close to its wall time is work on
 * the main thread; one with little CPU is the thread waiting for a core on a busy machine.
 */
const THRESHOLD_MS = 8;

let lastWall = process.hrtime.bigint();
let lastCpu = process.threadCpuUsage();
setInterval(() => {
  const wall = process.hrtime.bigint();
  const cpu = process.threadCpuUsage();
  const wallMs = Number(wall - lastWall) / 1e6;
  if (wallMs > THRESHOLD_MS) {
    const cpuMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
    process.stdout.write(
      `loop-block ${wallMs.toFixed(1)} ${cpuMs.toFixed(1)} ${lastWall / 1000n} ${wall / 1000n}\n`,
    );
  }
  lastWall = wall;
  lastCpu = cpu;
}, 1).unref();
