/**
 * The layout's rules, checked on the import graph of the source tree:
 * - imports of product code point down the flow: a folder of src imports only folders of lower
 *   layers (LAYERS); tests beside the code may reach further (an integration test runs a pipeline);
 * - nothing in src but its tests imports test/ or bench/;
 * - src holds product code, its tests, and each stage's conformance suite (`conformance.ts` beside the
 *   stage's interface, as the log, store and cache have): every other file is reachable from the
 *   CLI's entry. Test support, fakes and fixtures live in test/, benchmarks in bench/;
 * - the dashboard (web/) uses the pipeline's record types and nothing else of src.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '..');

/**
 * Folders of src from the bottom up. A folder may import any folder of a lower layer, none of its
 * own layer or above. Adapters of one kind (feeds, logs, stores) know only core; the stages that
 * connect them (ingest: feeds → log; process: log → store; cache, sinks and lake: store → outside)
 * sit above; serve reads them all; config composes every component's schema; pipeline wires the
 * stages; cli is the entry.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['feeds', 'log', 'store'],
  ['ingest', 'process', 'cache', 'sinks', 'lake'],
  ['serve'],
  ['config'],
  ['pipeline'],
  ['cli'],
];

/** Web may read these files of src (types the dashboard shares with the pipeline). */
const WEB_MAY_IMPORT = /^src\/(core|store)\/[a-z-]+\.ts$/;

const IMPORT = /(?:^|\s)(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist') out.push(...filesUnder(rel));
    } else if (/\.(ts|svelte)$/.test(entry.name)) {
      out.push(rel);
    }
  }
  return out;
}

/** Relative imports of a file, as repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2];
    if (spec?.startsWith('.'))
      out.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)));
  }
  return out;
}

export type Edge = { from: string; to: string };

/** The folder of src a file belongs to (`src/feeds/binance/x.ts` → `feeds`), or null outside src. */
function srcFolder(file: string): string | null {
  const parts = file.split('/');
  return parts[0] === 'src' && parts.length > 2 ? (parts[1] ?? null) : null;
}

/** Edges that break the layering; unknown folders are violations too (add them to LAYERS). */
export function layeringViolations(edges: readonly Edge[]): string[] {
  const layerOf = new Map<string, number>();
  LAYERS.forEach((folders, layer) => {
    for (const folder of folders) layerOf.set(folder, layer);
  });
  const violations: string[] = [];
  for (const { from, to } of edges) {
    const a = srcFolder(from);
    const b = srcFolder(to);
    if (a === null || b === null || a === b) continue;
    const la = layerOf.get(a);
    const lb = layerOf.get(b);
    if (la === undefined || lb === undefined) {
      violations.push(`${from} → ${to}: folder src/${la === undefined ? a : b} is not in LAYERS`);
    } else if (lb >= la) {
      violations.push(`${from} → ${to}: src/${a} may not import src/${b} (imports point down the flow)`);
    }
  }
  return violations;
}

function isSrcTest(file: string): boolean {
  return file.startsWith('src/') && (file.endsWith('.test.ts') || file.endsWith('/conformance.ts'));
}

const srcFiles = filesUnder('src');
const edges: Edge[] = srcFiles.flatMap((from) => importsOf(from).map((to) => ({ from, to })));
const productEdges = edges.filter((e) => !isSrcTest(e.from));

describe('architecture', () => {
  it('imports of product code in src point down the flow', () => {
    assert.deepEqual(layeringViolations(productEdges), []);
  });

  it('catches an upward or sideways import', () => {
    // A deliberate violation on a made-up graph: ingest reaching into serve, and one into process.
    const bad = [
      { from: 'src/ingest/ingest.ts', to: 'src/serve/server.ts' },
      { from: 'src/cache/x.ts', to: 'src/process/process-runner.ts' },
      { from: 'src/process/process-runner.ts', to: 'src/store/store.ts' },
    ];
    const found = layeringViolations(bad);
    assert.equal(found.length, 2);
    assert.match(found[0] ?? '', /src\/ingest may not import src\/serve/);
    assert.match(found[1] ?? '', /src\/cache may not import src\/process/);
  });

  it('nothing in src but its tests imports test/ or bench/', () => {
    const bad = productEdges.filter((e) => /^(test|bench)\//.test(e.to));
    assert.deepEqual(bad, []);
  });

  it('every non-test file of src is product code, reachable from the CLI', () => {
    const seen = new Set<string>();
    const queue = ['src/cli/main.ts'];
    while (queue.length > 0) {
      const file = queue.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const next of importsOf(file)) if (next.startsWith('src/')) queue.push(next);
    }
    const orphans = srcFiles.filter((f) => !isSrcTest(f) && !seen.has(f));
    assert.deepEqual(
      orphans,
      [],
      'test-only code belongs in test/ (support, fakes, fixtures), benchmarks in bench/',
    );
  });

  it('the dashboard imports only shared record types from src', () => {
    const bad = filesUnder('web/src')
      .flatMap((from) => importsOf(from).map((to) => ({ from, to })))
      .filter((e) => e.to.startsWith('src/') && !WEB_MAY_IMPORT.test(e.to));
    assert.deepEqual(bad, []);
  });
});
