#!/usr/bin/env -S node --max-semi-space-size=16
// Plain JavaScript so that an old Node gets a clear message instead of a syntax error on TypeScript.
// Installed globally (npm install -g, npm link) the command runs on the machine's node, which may be
// older than the project needs: then it hands over to the Node 24 the project installs beside it.
//
// V8 flags go on the first line, because V8 reads them only when the process starts (docs/engine.md,
// Memory). --max-semi-space-size=16: V8 otherwise grows the young generation to 64 MB semi-spaces
// under a live market, about 120 MB of RSS for garbage that dies young; 16 MB cost ~3 % of the main
// thread's CPU at replay speed. `npm start`, the Dockerfile and the tests start node with the same flags.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NODE_FLAGS = ['--max-semi-space-size=16'];
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  // import.meta.url is the real file, also behind npm's symlink in the global bin directory.
  const bundled = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(bundled)) {
    process.stderr.write(
      `streamlines needs Node.js >= 22.18 (found ${process.version}), and the Node 24 it brings is not installed at ${bundled}: run "npm install" in ${join(dirname(fileURLToPath(import.meta.url)), '..')}\n`,
    );
    process.exit(1);
  }
  const child = spawn(bundled, [...NODE_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => child.kill(signal));
  }
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else {
  const { runCli } = await import('../src/cli/main.ts');
  await runCli(process.argv.slice(2));
}
