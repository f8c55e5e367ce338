/**
 * The Kafka log's connection security, as the config names it (`log.tls`, `log.sasl`), and how it
 * becomes the client's options: files are read and the SASL password is taken from the environment
 * when the log opens, so no secret ever sits in the config file.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { KafkaConnection } from './kafka-wire.ts';

/** Environment variable holding the SASL password unless `log.sasl.passwordEnv` names another. */
export const DEFAULT_PASSWORD_ENV = 'STREAMLINES_KAFKA_PASSWORD';

export const kafkaTlsSchema = z
  .union([
    z.boolean(),
    z.strictObject({
      ca: z
        .string()
        .min(1)
        .optional()
        .describe('PEM file of the CA that signed the brokers (default: system CAs).'),
      cert: z.string().min(1).optional().describe('PEM file of a client certificate (mutual TLS).'),
      key: z.string().min(1).optional().describe('PEM file of the client certificate key (mutual TLS).'),
      servername: z.string().min(1).optional().describe('Server name to verify instead of the broker host.'),
    }),
  ])
  .optional()
  .describe('TLS to the brokers: true for the system CAs, or files.');

export const kafkaSaslSchema = z
  .strictObject({
    mechanism: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']).describe('SASL mechanism.'),
    username: z.string().min(1).describe('SASL user name.'),
    passwordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default(DEFAULT_PASSWORD_ENV)
      .describe('Environment variable that holds the password (never the config file).'),
  })
  .optional()
  .describe('SASL authentication; the password comes from the environment.');

export type KafkaTlsConfig = z.infer<typeof kafkaTlsSchema>;
export type KafkaSaslConfig = z.input<typeof kafkaSaslSchema>;

/** A Kafka security setting that cannot be used; the message says what to set. */
export class KafkaSecurityError extends Error {
  override readonly name = 'KafkaSecurityError';
  readonly code = 'KAFKA_SECURITY';
}

/** The client's TLS options for `tls` (files read now). */
export function resolveTls(tls: KafkaTlsConfig): KafkaConnection['tls'] {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return {};
  const read = (file: string | undefined, what: string) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new KafkaSecurityError(
        `kafka log: cannot read log.tls.${what} ${file}: ${(error as Error).message}`,
      );
    }
  };
  return {
    ...(tls.ca === undefined ? {} : { ca: read(tls.ca, 'ca') }),
    ...(tls.cert === undefined ? {} : { cert: read(tls.cert, 'cert') }),
    ...(tls.key === undefined ? {} : { key: read(tls.key, 'key') }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
  };
}

/** The client's SASL options for `sasl`, the password from the environment. */
export function resolveSasl(sasl: KafkaSaslConfig | undefined, env = process.env): KafkaConnection['sasl'] {
  if (sasl === undefined) return undefined;
  const passwordEnv = sasl.passwordEnv ?? DEFAULT_PASSWORD_ENV;
  const password = env[passwordEnv];
  if (password === undefined || password === '') {
    throw new KafkaSecurityError(
      `kafka log: log.sasl is set but ${passwordEnv} is empty: put the password for ${sasl.username} in that environment variable`,
    );
  }
  return { mechanism: sasl.mechanism, username: sasl.username, password };
}
