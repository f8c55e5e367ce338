/**
 * The files users run the distributed stack with: Prometheus config and alert rules (checked and
 * unit-tested by promtool, Debian package `prometheus`), docker-compose.yml (every service there,
 * every mounted ./ops file present) and the provisioned Grafana dashboard and datasources.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

const hasPromtool = spawnSync('promtool', ['--version']).error === undefined;
if (!hasPromtool && process.env.CI === 'true') {
  throw new Error('promtool is missing: apt-get install prometheus (CI must not skip these checks)');
}
if (!hasPromtool) console.warn('SKIPPING promtool checks: promtool not found (apt-get install prometheus)');

function promtool(args: string[], cwd = ROOT): void {
  const result = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  assert.equal(result.status, 0, `promtool ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
}

describe('Prometheus', { skip: hasPromtool ? false : 'promtool not installed' }, () => {
  it('alert rules pass promtool check rules', () =>
    promtool(['check', 'rules', 'ops/prometheus/alerts.yml']));
  it('config (and the rule files it names) pass promtool check config', () =>
    promtool(['check', 'config', 'ops/prometheus/prometheus.yml']));
  it('alerts fire on the series they are for and not on healthy ones (promtool test rules)', () =>
    promtool(['test', 'rules', 'alerts.test.yml'], path.join(ROOT, 'ops/prometheus')));
});

describe('alert rules use metrics that exist', () => {
  it('every streamlines_* name in alerts.yml is documented in docs/metrics.md', () => {
    const documented = read('docs/metrics.md');
    const used = new Set(read('ops/prometheus/alerts.yml').match(/streamlines_[a-z_]+/g) ?? []);
    assert.ok(
      used.size >= 5,
      `expected the rules to use the pipeline's metrics, found ${[...used].join(', ')}`,
    );
    for (const name of used) {
      // Histograms are documented by base name; queries add _bucket.
      const base = name.replace(/_bucket$/, '');
      assert.ok(documented.includes(`\`${base}\``), `${name} is not in docs/metrics.md`);
    }
  });
});

interface ComposeFile {
  services: Record<string, { image?: string; volumes?: string[] }>;
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as ComposeFile;

  it('has Kafka (KRaft), TimescaleDB, Redis, Prometheus and Grafana', () => {
    const images = Object.fromEntries(
      Object.entries(compose.services).map(([name, service]) => [name, service.image ?? '']),
    );
    assert.match(images.kafka ?? '', /^apache\/kafka:/);
    assert.match(images.timescaledb ?? '', /^timescale\/timescaledb:/);
    assert.match(images.redis ?? '', /^redis:/);
    assert.match(images.prometheus ?? '', /^prom\/prometheus:/);
    assert.match(images.grafana ?? '', /^grafana\/grafana:/);
    const kafka = read('docker-compose.yml');
    assert.match(kafka, /KAFKA_PROCESS_ROLES: broker,controller/, 'Kafka runs in KRaft mode');
  });

  it('every mounted ./ops path exists', () => {
    const mounts = Object.values(compose.services)
      .flatMap((service) => service.volumes ?? [])
      .map((volume) => volume.split(':')[0]!)
      .filter((source) => source.startsWith('./'));
    assert.ok(mounts.length >= 5, `expected the ops files to be mounted, got ${mounts.join(', ')}`);
    for (const source of mounts) assert.ok(existsSync(path.join(ROOT, source)), `${source} does not exist`);
  });

  it('puts no password in the file: they come from the environment', () => {
    const text = read('docker-compose.yml');
    for (const match of text.matchAll(/PASSWORD: (.*)/g)) assert.match(match[1]!, /^\$\{[A-Z_]+/);
  });
});

interface Dashboard {
  templating: { list: { name: string; type: string; query: string; datasource: { uid: string } }[] };
  panels: { title: string; datasource: { uid: string }; targets: { rawSql?: string; expr?: string }[] }[];
}

describe('Grafana', () => {
  const dashboard = JSON.parse(read('ops/grafana/dashboards/streamlines.json')) as Dashboard;
  const datasources = parse(read('ops/grafana/provisioning/datasources/streamlines.yml')) as {
    datasources: { uid: string; type: string; secureJsonData?: Record<string, string> }[];
  };

  it('provisions a PostgreSQL (TimescaleDB) and a Prometheus datasource, password from the environment', () => {
    const byUid = new Map(datasources.datasources.map((source) => [source.uid, source]));
    assert.equal(byUid.get('streamlines-timescaledb')?.type, 'grafana-postgresql-datasource');
    assert.equal(byUid.get('streamlines-timescaledb')?.secureJsonData?.password, '$POSTGRES_PASSWORD');
    assert.equal(byUid.get('streamlines-prometheus')?.type, 'prometheus');
    // Every panel and variable points at a provisioned datasource.
    const uids = [
      ...dashboard.panels.map((panel) => panel.datasource.uid),
      ...dashboard.templating.list.map((variable) => variable.datasource.uid),
    ];
    for (const uid of uids) assert.ok(byUid.has(uid), `datasource ${uid} is not provisioned`);
  });

  it('has a `symbol` variable listing the stored symbols', () => {
    const symbol = dashboard.templating.list.find((variable) => variable.name === 'symbol');
    assert.ok(symbol, 'no symbol variable');
    assert.equal(symbol.type, 'query');
    assert.match(symbol.query, /\bsymbol\b.*\bFROM latest\b/);
  });

  it('plots price with MA5/MA20 from ticks.ma_short/ma_long, and volume, for $symbol', () => {
    const sql = dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.rawSql ?? ''));
    const price = sql.find((query) => /FROM ticks/.test(query));
    assert.ok(price, 'no panel reads the ticks table');
    assert.match(price, /\bma_short\b/);
    assert.match(price, /\bma_long\b/);
    assert.match(price, /symbol = '\$symbol'/);
    const volume = sql.find((query) => /\bvolume\b/.test(query));
    assert.ok(volume, 'no volume panel');
    assert.match(volume, /FROM candles/);
    // The column names the panels read are the store's (src/store/postgres/migrations.ts).
    const migrations = read('src/store/postgres/migrations.ts');
    for (const column of ['ma_short', 'ma_long', 'volume', 'price', 'symbol']) {
      assert.match(migrations, new RegExp(`\\b${column} `), `${column} is not a column of the store`);
    }
  });
});
