/** The `alerts` section of the config (docs/design.md, Rules; docs/alerts.md): price rules, crosses, anomalies. */
import { z } from 'zod';
import { durationField, symbolField } from '../core/config-fields.ts';

const ruleSymbol = symbolField.describe('The symbol the rule watches (trimmed and upper-cased).');

const cooldown = durationField
  .optional()
  .describe('Event time after the rule fires during which it does not fire again (off when absent).');

/** `{symbol, above|below, cooldown?}`; the duration comes out as `cooldownMs`, as the processor reads it. */
export const priceRuleSchema = z
  .union([
    z.strictObject({
      symbol: ruleSymbol,
      above: z.number().finite().describe('Fire `price_above` when the price crosses above this.'),
      cooldown,
    }),
    z.strictObject({
      symbol: ruleSymbol,
      below: z.number().finite().describe('Fire `price_below` when the price crosses below this.'),
      cooldown,
    }),
  ])
  .transform(({ cooldown: cooldownMs, ...rule }) =>
    cooldownMs === undefined ? rule : { ...rule, cooldownMs },
  );

/** `false` (no cross alerts) or `{cooldown}` per symbol (docs/design.md, Rules); on with no cooldown by default. */
export const maCrossSchema = z
  .union([
    z.literal(false),
    z
      .strictObject({
        cooldown: durationField
          .default(0)
          .describe('Event time after a cross of a symbol during which that symbol fires no cross.'),
      })
      .transform(({ cooldown: cooldownMs }) => ({ cooldownMs })),
  ])
  .prefault({});

/** `alerts.anomaly` (docs/anomaly.md): off unless configured. */
export const anomalySchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Fire `anomaly` alerts (off unless configured).'),
    zScore: z
      .number()
      .positive()
      .default(6)
      .describe('|z| at or above which a return is anomalous: how many standard deviations from the mean.'),
    halfLifeTicks: z
      .number()
      .positive()
      .default(100)
      .describe(
        'Half-life, in ticks, of the weights of the mean and variance of returns (100: alpha ~ 0.0069).',
      ),
    warmupTicks: z
      .number()
      .int()
      .nonnegative()
      .default(50)
      .describe('Returns a symbol needs before it can alert.'),
    cooldownTicks: z
      .number()
      .int()
      .nonnegative()
      .default(20)
      .describe('Returns after an alert during which the symbol stays quiet.'),
    minStdDev: z
      .number()
      .nonnegative()
      .default(0.0001)
      .describe(
        'Floor of the standard deviation of returns (1 basis point), so a move after a flat spell is not infinitely surprising.',
      ),
  })
  .prefault({});

/** The `alerts` section. */
export const alertsConfigSchema = z
  .strictObject({
    rules: z
      .array(priceRuleSchema)
      .max(1_000)
      .default([])
      .describe('Price rules: {symbol, above} or {symbol, below}, optional cooldown; at most 1 000.'),
    maCross: maCrossSchema.describe(
      'Golden/death cross alerts on the 5/20-tick averages: false (off) or {cooldown} per symbol.',
    ),
    anomaly: anomalySchema.describe('Alerts on returns far outside their recent spread (docs/anomaly.md).'),
  })
  .prefault({});
