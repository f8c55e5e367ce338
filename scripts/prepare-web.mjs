// `npm install`'s prepare step: builds the dashboard (web/dist) for a development checkout, once,
// and again only when web/ changed. An install without the dev tools (`npm install --omit=dev`, the
// Dockerfile's runtime stage) has no vite: it skips, and the dashboard comes from a build stage.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const web = path.join(root, 'web');
const built = path.join(web, 'dist', 'index.html');

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'dist' || entry.name === 'node_modules') continue;
    const file = path.join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(file) : statSync(file).mtimeMs);
  }
  return latest;
}

if (!existsSync(path.join(root, 'node_modules', 'vite'))) {
  console.log('prepare: vite is not installed (production install): the dashboard is not built here');
} else if (existsSync(built) && statSync(built).mtimeMs >= newest(web)) {
  console.log('prepare: web/dist is up to date');
} else {
  const result = spawnSync('npm', ['run', 'build:web'], { cwd: root, stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
