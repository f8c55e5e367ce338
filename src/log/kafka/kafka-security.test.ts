/**
 * The Kafka log over authenticated and encrypted listeners: SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
 * with the password from the environment, and TLS verified against the test CA. The broker is started
 * here with those listeners (test/support/kafka.ts startSecureKafka).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { startSecureKafka } from '../../../test/support/kafka.ts';
import { logConfigSchema } from '../../config/schema.ts';
import { DEFAULT_PASSWORD_ENV, KafkaSecurityError, resolveSasl } from './kafka-config.ts';
import { KafkaLog, type KafkaLogOptions } from './kafka-log.ts';

it('takes the SASL password from the environment, never the config', () => {
  assert.throws(
    () =>
      logConfigSchema.parse({
        type: 'kafka',
        brokers: ['b:9092'],
        sasl: { mechanism: 'PLAIN', username: 'u', password: 'x' },
      }),
    /password/,
  );
  const sasl = { mechanism: 'SCRAM-SHA-512' as const, username: 'u' };
  assert.throws(
    () => resolveSasl(sasl, {}),
    (error: unknown) => {
      assert.ok(error instanceof KafkaSecurityError);
      assert.match(error.message, new RegExp(DEFAULT_PASSWORD_ENV));
      return true;
    },
  );
  assert.deepEqual(resolveSasl({ ...sasl, passwordEnv: 'MY_PW' }, { MY_PW: 's3cret' }), {
    mechanism: 'SCRAM-SHA-512',
    username: 'u',
    password: 's3cret',
  });
});

const kafka = await startSecureKafka();

if ('skip' in kafka) {
  it('kafka log over SASL and TLS', { skip: kafka.skip }, () => {});
} else {
  after(() => kafka.stop());
  let run = 0;
  const roundTrip = async (options: Omit<KafkaLogOptions, 'topicPrefix' | 'transactionalId'>) => {
    const id = `sec${process.pid}-${run++}`;
    const log = new KafkaLog({ ...options, topicPrefix: `${id}.`, transactionalId: id });
    await log.open();
    try {
      await log.append(
        't',
        [
          { key: 'k', value: { n: 1 } },
          { key: 'k', value: { n: 2 } },
        ],
        { at: 2 },
      );
      const values = (await log.read<{ n: number }>('t', 0, 0, 10)).map((record) => record.value.n);
      assert.deepEqual(values, [1, 2]);
      assert.deepEqual(await log.producerState('t'), { at: 2 });
    } finally {
      await log.close();
    }
  };

  describe('kafka log over SASL and TLS', () => {
    for (const mechanism of ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const) {
      it(`appends and reads over SASL ${mechanism}, the password from the environment`, async () => {
        const passwordEnv = `STREAMLINES_TEST_KAFKA_PW_${mechanism.replaceAll('-', '_')}`;
        process.env[passwordEnv] = kafka.password;
        try {
          await roundTrip({
            brokers: kafka.saslBrokers,
            sasl: { mechanism, username: kafka.user, passwordEnv },
          });
        } finally {
          delete process.env[passwordEnv];
        }
      });
    }

    it('refuses a wrong SASL password', async () => {
      process.env.STREAMLINES_TEST_KAFKA_BAD_PW = 'not-the-password';
      const log = new KafkaLog({
        brokers: kafka.saslBrokers,
        sasl: {
          mechanism: 'SCRAM-SHA-256',
          username: kafka.user,
          passwordEnv: 'STREAMLINES_TEST_KAFKA_BAD_PW',
        },
      });
      try {
        await assert.rejects(log.open());
      } finally {
        delete process.env.STREAMLINES_TEST_KAFKA_BAD_PW;
        await log.close();
      }
    });

    it('appends and reads over TLS, verifying the broker against the configured CA', async () => {
      const ca = path.join(tmpdir(), `streamlines-test-ca-${process.pid}.pem`);
      await writeFile(ca, kafka.ca);
      await roundTrip({ brokers: kafka.tlsBrokers, tls: { ca } });
    });

    it('refuses a TLS broker whose certificate the system CAs did not sign', async () => {
      const log = new KafkaLog({ brokers: kafka.tlsBrokers, tls: true });
      try {
        await assert.rejects(log.open());
      } finally {
        await log.close();
      }
    });
  });
}
