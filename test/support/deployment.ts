/**
 * What the distributed end-to-end tests share: the config of one deployment (its own Kafka topics,
 * PostgreSQL schema and Redis keys), the embedded reference every distributed run must equal, and
 * the roles' state and stderr for a failure message.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import {
  dumpApi,
  dumpDeadLetters,
  isRunning,
  type RunningRole,
  replayArgs,
  startCli,
  stopCli,
  stopRole,
  waitDrained,
} from './cli.ts';
import { createTestSchema } from './postgres.ts';

/**
 * What a distributed suite cleans up whatever its tests did: its temp dir, every role started
 * (killed) and every PostgreSQL schema (dropped). `open()` in `before`, `close()` in `after`.
 */
export class DeploymentSuite {
  /** The suite's temp dir, once open. */
  dir = '';
  readonly #name: string;
  readonly #pgUrl: string;
  readonly #roles: RunningRole[] = [];
  readonly #drops: (() => Promise<void>)[] = [];
  #count = 0;

  constructor(name: string, pgUrl: string) {
    this.#name = name;
    this.#pgUrl = pgUrl;
  }

  async open(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), `streamlines-${this.#name}-`));
  }

  /**
   * A fresh deployment: its own id (the topic and Redis key prefix), PostgreSQL schema and dir. The
   * roles it tracks are stopped when the test ends, passed or not, so they never load the next test.
   */
  async deployment(name: string, t: TestContext) {
    const own: RunningRole[] = [];
    t.after(() => Promise.allSettled(own.map((role) => stopRole(role))));
    const { schema, drop } = await createTestSchema(this.#pgUrl);
    this.#drops.push(drop);
    const root = join(this.dir, name);
    await mkdir(root, { recursive: true });
    return {
      id: `sl${process.pid}x${++this.#count}${Date.now().toString(36)}`,
      schema,
      root,
      track: <T extends RunningRole>(role: T): T => {
        this.#roles.push(role);
        own.push(role);
        return role;
      },
      /** The tails of the roles' stderr, for a failure message. */
      context: (tailChars?: number) => describeRoles(own, tailChars),
    };
  }

  /** Kills what a failed test left running, drops the schemas, then stops the servers and removes the dir. */
  async close(stopServers: () => Promise<unknown>): Promise<void> {
    await Promise.allSettled(this.#roles.map((role) => stopRole(role, 'SIGKILL', 5_000)));
    await Promise.allSettled(this.#drops.map((drop) => drop()));
    await stopServers();
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true });
  }
}

/** The config file of one deployment: `pipeline` (what both modes share) on Kafka, PostgreSQL and Redis. */
export async function writeDeploymentConfig(
  file: string,
  deployment: {
    pipeline: Record<string, unknown>;
    brokers: string[];
    partitions: number;
    /** Topic prefix and Redis key prefix, unique per deployment. */
    id: string;
    pgUrl: string;
    schema: string;
    redisUrl: string;
  },
): Promise<void> {
  const { pipeline, brokers, partitions, id, pgUrl, schema, redisUrl } = deployment;
  await writeFile(
    file,
    JSON.stringify({
      ...pipeline,
      log: { type: 'kafka', brokers, partitions, topicPrefix: `${id}.` },
      store: { type: 'postgres', url: pgUrl, schema },
      cache: { type: 'redis', url: redisUrl, keyPrefix: `${id}:` },
    }),
  );
}

/**
 * What the embedded `run` gives for `replay` at full speed with `pipeline` as its config: the stats,
 * the whole REST dump and the dead letters.
 */
export async function embeddedReference(
  replay: string,
  pipeline: Record<string, unknown>,
  paths: { config: string; dataDir: string },
) {
  await writeFile(paths.config, JSON.stringify(pipeline));
  const cli = await startCli(replayArgs(replay, paths.dataDir, paths.config));
  try {
    const stats = await waitDrained(cli.baseUrl);
    return { stats, dump: await dumpApi(cli.baseUrl), deadLetters: await dumpDeadLetters(cli.baseUrl) };
  } finally {
    await stopCli(cli);
  }
}

/** Each role's pid, whether it runs, and the tail of its stderr: what a failure message needs. */
export function describeRoles(roles: readonly RunningRole[], tailChars = 2_000): string {
  return roles
    .map(
      (role) =>
        `--- ${role.role} (pid ${role.child.pid}, ${isRunning(role) ? 'running' : `exited ${role.child.signalCode ?? role.child.exitCode}`}):\n${role.stderr().slice(-tailChars)}`,
    )
    .join('\n');
}
