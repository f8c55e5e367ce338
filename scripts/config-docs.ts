/**
 * Regenerates the config docs from the schemas: docs/configuration.md, docs/config.schema.json, and the
 * `<!-- config-keys: ... -->` tables in README.md and docs/*.md. Run: `npx node scripts/config-docs.ts`.
 * src/config/config-reference.test.ts and json-schema.test.ts fail until the committed files match.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { configReferenceMarkdown, withConfigKeyTables } from '../src/config/config-reference.ts';
import { configJsonSchemaText } from '../src/config/json-schema.ts';

const root = path.resolve(import.meta.dirname, '..');
await writeFile(path.join(root, 'docs/configuration.md'), configReferenceMarkdown());
await writeFile(path.join(root, 'docs/config.schema.json'), configJsonSchemaText());
const docs = (await readdir(path.join(root, 'docs'))).filter((name) => name.endsWith('.md'));
for (const file of ['README.md', ...docs.map((name) => `docs/${name}`)]) {
  const text = await readFile(path.join(root, file), 'utf8');
  const updated = withConfigKeyTables(text);
  if (updated !== text) {
    await writeFile(path.join(root, file), updated);
    process.stdout.write(`updated ${file}\n`);
  }
}
