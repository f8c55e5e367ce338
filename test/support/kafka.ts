/**
 * How tests reach a Kafka broker: `STREAMLINES_TEST_KAFKA_BROKERS` (comma-separated host:port) when set,
 * otherwise a throwaway single-node KRaft broker started here with `scripts/kafka/start.sh` (Apache
 * Kafka jars from Maven Central, fetched by `scripts/kafka/fetch.sh` when missing and `mvn` is there).
 * Outside CI a missing broker skips loudly; in CI (`CI=true`) it fails, so a broken image cannot pass.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Admin, ConfigResourceTypes } from '@platformatic/kafka';
import {
  freePort,
  logLineAppears,
  type ServerChild,
  startOrSkip,
  startServerChild,
} from './server-process.ts';

const run = promisify(execFile);

const SCRIPTS = path.resolve(import.meta.dirname, '../../scripts/kafka');
/** The broker version the tests start (CI runs the Kafka tests once per supported major version). */
export const KAFKA_VERSION = process.env.STREAMLINES_TEST_KAFKA_VERSION || '3.9.1';
const STARTUP_TIMEOUT_MS = 90_000;

/** A broker the tests may use; `stop()` shuts down what this module started (nothing otherwise). */
export interface TestKafka {
  brokers: string[];
  /** True when this process started the broker (and `stop` kills it and removes its data). */
  started: boolean;
  stop: () => Promise<void>;
}

/** Why there is no broker, to print when a suite skips. */
export type NoKafka = { skip: string };

/** Finds or starts a broker. Resolves to `{skip}` outside CI when none can be had; throws in CI. */
export async function findOrStartKafka(): Promise<TestKafka | NoKafka> {
  const fromEnv = process.env.STREAMLINES_TEST_KAFKA_BROKERS;
  if (fromEnv !== undefined && fromEnv !== '') {
    return {
      brokers: fromEnv.split(',').map((broker) => broker.trim()),
      started: false,
      stop: async () => {},
    };
  }
  return startKafkaOrSkip(
    'no Kafka broker for tests: set STREAMLINES_TEST_KAFKA_BROKERS, or install Java 17+ and Maven (scripts/kafka/fetch.sh)',
    () => startBroker(),
  );
}

/** startOrSkip for a broker of this module's: its jars are fetched first when missing. */
function startKafkaOrSkip<T>(reason: string, start: () => Promise<T>): Promise<T | NoKafka> {
  return startOrSkip('Kafka', reason, async () => {
    await ensureJars();
    return start();
  });
}

async function ensureJars(): Promise<void> {
  const jars = path.join(SCRIPTS, 'jars', KAFKA_VERSION);
  const names = existsSync(jars) ? await readdir(jars) : [];
  if (names.some((name) => name.startsWith('kafka_2.13-'))) return;
  console.warn(
    `kafka test support: broker ${KAFKA_VERSION} jars missing, fetching them from Maven Central (${SCRIPTS}/fetch.sh)`,
  );
  await run(path.join(SCRIPTS, 'fetch.sh'), [], {
    timeout: 600_000,
    env: { ...process.env, KAFKA_VERSION },
  });
}

/** `scripts/kafka/start.sh` on these ports with its data in `dir` (stderr piped, for failure messages). */
function spawnBroker(
  dir: string,
  port: number,
  controllerPort: number,
  extraEnv: Record<string, string> = {},
): ChildProcess {
  return spawn(path.join(SCRIPTS, 'start.sh'), [], {
    env: {
      ...process.env,
      ...extraEnv,
      KAFKA_VERSION,
      KAFKA_DIR: dir,
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controllerPort),
      KAFKA_HEAP: '384m',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** A broker on free ports with its data in `dir` (a new temp dir when not given), once it serves. */
async function startBrokerChild(
  extraEnv: Record<string, string> = {},
  dir?: string,
): Promise<{ brokers: string[]; server: ServerChild }> {
  const dataDir = dir ?? (await mkdtemp(path.join(os.tmpdir(), 'streamlines-kafka-')));
  const port = await freePort();
  const controllerPort = await freePort();
  const server = await startServerChild({
    name: 'kafka broker',
    dir: dataDir,
    spawn: () => spawnBroker(dataDir, port, controllerPort, extraEnv),
    // The broker logs this line once both its controller and broker roles serve requests.
    arm: logLineAppears(path.join(dataDir, 'server.log'), 'Kafka Server started'),
    startupTimeoutMs: STARTUP_TIMEOUT_MS,
    pollMs: 200,
    killAfterMs: 15_000,
  });
  return { brokers: [`127.0.0.1:${port}`], server };
}

async function startBroker(extraEnv: Record<string, string> = {}, dir?: string): Promise<TestKafka> {
  const { brokers, server } = await startBrokerChild(extraEnv, dir);
  return { brokers, started: true, stop: server.destroy };
}

/** A broker this process owns and may stop and start again on the same port and data dir. */
export interface RestartableKafka {
  brokers: string[];
  /** Stops the broker (SIGTERM, a clean shutdown) and keeps its data. */
  stopBroker: () => Promise<void>;
  /** Starts the broker again on the same port and data dir; resolves once it serves requests. */
  startBroker: () => Promise<void>;
  /** Stops the broker if running and removes its data. */
  destroy: () => Promise<void>;
}

/**
 * Starts a broker of its own (never the `STREAMLINES_TEST_KAFKA_BROKERS` one, which a test must not stop),
 * for outage tests. Resolves to `{skip}` outside CI when none can be started; throws in CI.
 */
export async function startRestartableKafka(): Promise<RestartableKafka | NoKafka> {
  return startKafkaOrSkip(
    'no Kafka broker to stop and restart: install Java 17+ and Maven (scripts/kafka/fetch.sh)',
    async () => {
      const { brokers, server } = await startBrokerChild();
      return { brokers, stopBroker: server.stop, startBroker: server.start, destroy: server.destroy };
    },
  );
}

/**
 * The committed offsets of consumer group `groupId` on `topic`, per partition, as Kafka's own tools
 * read them (OffsetFetch); -1 where the group committed nothing.
 */
export async function groupOffsets(
  brokers: string[],
  groupId: string,
  topic: string,
  partitions: number,
): Promise<Record<number, number>> {
  const admin = new Admin({ clientId: 'streamlines-test', bootstrapBrokers: brokers });
  try {
    const [group] = await admin.listConsumerGroupOffsets({
      groups: [
        {
          groupId,
          topics: [{ name: topic, partitionIndexes: Array.from({ length: partitions }, (_, i) => i) }],
        },
      ],
    });
    const out: Record<number, number> = {};
    for (const { partitions: list } of group?.topics ?? []) {
      for (const { partitionIndex, committedOffset } of list) out[partitionIndex] = Number(committedOffset);
    }
    return out;
  } finally {
    await admin.close();
  }
}

/** A broker with authenticated listeners beside its PLAINTEXT one, and what a client needs for them. */
export interface SecureTestKafka extends TestKafka {
  /** SASL_PLAINTEXT listener: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for `user` / `password`. */
  saslBrokers: string[];
  /** SSL listener, its certificate signed for 127.0.0.1 by `ca`. */
  tlsBrokers: string[];
  user: string;
  password: string;
  /** PEM of the certificate authority that signed the broker's certificate. */
  ca: string;
}

/**
 * Starts a broker of its own with a SASL listener (PLAIN and SCRAM) and a TLS listener, the
 * certificate made here with openssl. Resolves to `{skip}` outside CI when none can be started.
 */
export async function startSecureKafka(): Promise<SecureTestKafka | NoKafka> {
  return startKafkaOrSkip(
    'no Kafka broker with SASL/TLS listeners: install Java 17+, Maven and openssl (scripts/kafka/fetch.sh)',
    async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-kafka-'));
      const keystore = path.join(dir, 'broker.pem');
      const ca = await makeCertificate(dir, keystore);
      const saslPort = await freePort();
      const tlsPort = await freePort();
      const user = 'streamlines';
      const password = `pw-${process.pid}-${Date.now().toString(36)}`;
      const broker = await startBroker(
        {
          KAFKA_SASL_PORT: String(saslPort),
          KAFKA_SASL_USER: user,
          KAFKA_SASL_PASSWORD: password,
          KAFKA_TLS_PORT: String(tlsPort),
          KAFKA_TLS_KEYSTORE: keystore,
        },
        dir,
      );
      return {
        ...broker,
        saslBrokers: [`127.0.0.1:${saslPort}`],
        tlsBrokers: [`127.0.0.1:${tlsPort}`],
        user,
        password,
        ca,
      };
    },
  );
}

/** A CA and a broker certificate for 127.0.0.1 signed by it; writes key + chain to `keystore`, returns the CA PEM. */
async function makeCertificate(dir: string, keystore: string): Promise<string> {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=streamlines-test-ca',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
  );
  await openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    file('broker.key'),
    '-out',
    file('broker.csr'),
  );
  await writeFile(file('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(
    'x509',
    '-req',
    '-in',
    file('broker.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('san.ext'),
    '-out',
    file('broker.crt'),
  );
  // Kafka's PEM keystore wants a PKCS#8 key, then the certificate chain.
  await openssl('pkcs8', '-topk8', '-nocrypt', '-in', file('broker.key'), '-out', file('broker.pk8'));
  const [key, cert, ca] = await Promise.all(
    ['broker.pk8', 'broker.crt', 'ca.pem'].map((name) => readFile(file(name), 'utf8')),
  );
  await writeFile(keystore, `${key}${cert}${ca}`);
  return ca!;
}

/** The listed topic configs of `topic` as the broker reports them (DescribeConfigs). */
export async function topicConfigs(
  brokers: string[],
  topic: string,
  names: string[],
): Promise<Record<string, string | null | undefined>> {
  const admin = new Admin({ clientId: 'streamlines-test', bootstrapBrokers: brokers });
  try {
    const [description] = await admin.describeConfigs({
      resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: names }],
    });
    return Object.fromEntries((description?.configs ?? []).map(({ name, value }) => [name, value]));
  } finally {
    await admin.close();
  }
}
