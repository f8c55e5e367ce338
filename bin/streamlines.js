#!/usr/bin/env node
// Plain JavaScript so that an old Node gets a clear message instead of a syntax error on TypeScript.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `streamlines needs Node.js >= 22.18 (found ${process.version}); run it through npm ("npx streamlines", "npm start"), which uses the Node 24 the project installs\n`,
  );
  process.exit(1);
}
const { runCli } = await import('../src/cli/main.ts');
await runCli(process.argv.slice(2));
