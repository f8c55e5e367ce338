#!/usr/bin/env python3
"""An independent reference implementation of the rules of docs/design.md, written from the text alone and
kept deliberately naive (whole lists, no incremental state), so the end-to-end tests compare the
TypeScript pipeline against a second reading of the rules rather than against itself.

    python3 test/reference/reference.py REPLAY.ndjson LATENESS_MS ALERTS_JSON [DEDUP_HORIZON_MS] > expected.json

ALERTS_JSON is the config's `alerts` object ({"rules": [...], "maCross": false | {"cooldown": D}}) or,
as before, just its list of rules. Cooldowns are durations: ms, or "500ms", "10s", "5m", "1h".

Prints the counters, every tick with its moving averages and lateness, the candles of each interval,
the indicator points and the alerts, as the REST API should serve them after the replay ends."""
import json
import math
import re
import sys

SYMBOL = re.compile(r'^[A-Z0-9][A-Z0-9._:/-]{0,31}$')
INTERVALS = {'1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '1d': 86_400_000}


def is_int(v):
    # JSON numbers like 5.0 are integers in JavaScript too.
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and math.isfinite(v) and v.is_integer())


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate(rec):
    if not isinstance(rec, dict):
        return 'not_object', None
    sym = rec.get('symbol')
    if not isinstance(sym, str) or not SYMBOL.match(sym.strip().upper()):
        return 'invalid_symbol', None
    ts = rec.get('ts')
    if not is_int(ts) or ts <= 0:
        return 'invalid_ts', None
    price = rec.get('price')
    if not is_num(price) or price <= 0:
        return 'invalid_price', None
    size = rec.get('size')
    if not is_num(size) or size < 0:
        return 'invalid_size', None
    tid = None
    if 'id' in rec:
        v = rec['id']
        if isinstance(v, str):
            tid = v
        elif is_int(v):
            tid = str(int(v))
        else:
            return 'invalid_id', None
    source = rec.get('source') if isinstance(rec.get('source'), str) and rec.get('source') != '' else 'replay'
    return None, {'source': source, 'symbol': sym.strip().upper(), 'ts': int(ts), 'price': float(price), 'size': float(size), 'id': tid}


CANONICAL_ID = re.compile(r'^(0|[1-9][0-9]*)$')


def exact_id(tid):
    # docs/design.md, Duplicates: a canonical decimal integer below 2^53 is remembered exactly (forever).
    return CANONICAL_ID.match(tid) is not None and int(tid) < 2 ** 53


def duration_ms(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = re.fullmatch(r'\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*', v)
    return float(m.group(1)) * {'ms': 1, 's': 1_000, 'm': 60_000, 'h': 3_600_000, 'd': 86_400_000}[m.group(2) or 'ms']


def mean(xs):
    return sum(xs) / len(xs)


def indicators(closes):
    points = []
    ema = None
    avg_gain = avg_loss = None
    for i in range(len(closes)):
        n = i + 1
        window = closes[max(0, n - 20):n]
        sma = mean(window) if n >= 20 else None
        if n == 20:
            ema = sma
        elif n > 20:
            alpha = 2 / 21
            ema = alpha * closes[i] + (1 - alpha) * ema
        rsi = None
        if n >= 15:
            changes = [closes[j] - closes[j - 1] for j in range(1, n)]
            if n == 15:
                avg_gain = mean([max(c, 0) for c in changes[:14]])
                avg_loss = mean([max(-c, 0) for c in changes[:14]])
            else:
                c = changes[-1]
                avg_gain = (avg_gain * 13 + max(c, 0)) / 14
                avg_loss = (avg_loss * 13 + max(-c, 0)) / 14
            if avg_loss == 0 and avg_gain == 0:
                rsi = 50.0
            elif avg_loss == 0:
                rsi = 100.0
            else:
                rsi = 100 - 100 / (1 + avg_gain / avg_loss)
        if sma is not None:
            std = math.sqrt(sum((x - sma) ** 2 for x in window) / 20)
            bb = (sma + 2 * std, sma, sma - 2 * std)
        else:
            bb = (None, None, None)
        points.append({'sma20': sma, 'ema20': ema if n >= 20 else None, 'rsi14': rsi,
                       'bbUpper': bb[0], 'bbMiddle': bb[1], 'bbLower': bb[2]})
    return points


def main():
    path, lateness, alerts = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    horizon = int(sys.argv[4]) if len(sys.argv) > 4 else 86_400_000
    if isinstance(alerts, list):
        alerts = {'rules': alerts}
    rules = alerts.get('rules', [])
    ma_cross = alerts.get('maCross', {})
    cross_cooldown = None if ma_cross is False else duration_ms(ma_cross.get('cooldown', 0))
    counters = {'received': 0, 'accepted': 0, 'rejected': 0, 'duplicates': 0, 'late': 0, 'rejectedByReason': {}}
    seen = set()          # (source, symbol, id) of exact ids
    seen_at = {}          # (source, symbol, id) -> ts of the tick that brought any other id
    newest = {}           # (source, symbol) -> largest ts accepted
    ticks = {}       # symbol -> list of accepted ticks in log order
    max_ts = {}
    with open(path, encoding='utf-8') as f:
        for raw in f:
            line = raw.rstrip('\n').rstrip('\r')
            if line.strip() == '':
                continue
            counters['received'] += 1
            try:
                rec = json.loads(line)
            except ValueError:
                reason, tick = 'invalid_json', None
            else:
                reason, tick = validate(rec)
            if reason:
                counters['rejected'] += 1
                counters['rejectedByReason'][reason] = counters['rejectedByReason'].get(reason, 0) + 1
                continue
            pair = (tick['source'], tick['symbol'])
            if tick['id'] is not None:
                key = (tick['source'], tick['symbol'], tick['id'])
                if exact_id(tick['id']):
                    if key in seen:
                        counters['duplicates'] += 1
                        continue
                    seen.add(key)
                else:
                    oldest = newest[pair] - horizon if pair in newest else -math.inf
                    if tick['ts'] < oldest:
                        counters['rejected'] += 1
                        counters['rejectedByReason']['too_old'] = counters['rejectedByReason'].get('too_old', 0) + 1
                        continue
                    if key in seen_at and seen_at[key] >= oldest:
                        counters['duplicates'] += 1
                        continue
                    seen_at[key] = tick['ts']
            newest[pair] = max(newest.get(pair, tick['ts']), tick['ts'])
            counters['accepted'] += 1
            sym = tick['symbol']
            w = max_ts[sym] - lateness if sym in max_ts else -math.inf
            bucket = tick['ts'] - tick['ts'] % 60_000
            tick['late'] = bucket + 60_000 <= w
            if tick['late']:
                counters['late'] += 1
            max_ts[sym] = max(max_ts.get(sym, tick['ts']), tick['ts'])
            ticks.setdefault(sym, []).append(tick)

    out = {'counters': counters, 'symbols': {}, 'alerts': []}
    rule_list = [(r['symbol'].strip().upper(), 'above' if 'above' in r else 'below', r.get('above', r.get('below')),
                  duration_ms(r.get('cooldown', 0))) for r in rules]

    def rested(fired_at, ts, cooldown):
        # docs/design.md: after an alert fires at t, it fires again only at a tick with ts >= t + cooldown.
        return cooldown <= 0 or fired_at is None or ts >= fired_at + cooldown
    for sym, ts_list in ticks.items():
        prices = [t['price'] for t in ts_list]
        for i, t in enumerate(ts_list):
            t['maShort'] = mean(prices[i - 4:i + 1]) if i >= 4 else None
            t['maLong'] = mean(prices[i - 19:i + 1]) if i >= 19 else None
        candles = {}
        for name, ms in INTERVALS.items():
            buckets = {}
            for order, t in enumerate(ts_list):
                if t['late']:
                    continue
                buckets.setdefault(t['ts'] - t['ts'] % ms, []).append((t['ts'], order, t))
            rows = []
            for b in sorted(buckets):
                items = buckets[b]
                first = min(items, key=lambda x: (x[0], x[1]))
                last = max(items, key=lambda x: (x[0], x[1]))
                volume = sum(x[2]['size'] for x in items)
                rows.append({'ts': b, 'open': first[2]['price'], 'close': last[2]['price'],
                             'high': max(x[2]['price'] for x in items), 'low': min(x[2]['price'] for x in items),
                             'volume': volume, 'trades': len(items),
                             'vwap': (sum(x[2]['price'] * x[2]['size'] for x in items) / volume) if volume != 0 else None})
            points = indicators([r['close'] for r in rows])
            for r, p in zip(rows, points):
                p['ts'] = r['ts']
            candles[name] = {'candles': rows, 'indicators': points}
        last = ts_list[-1]
        out['symbols'][sym] = {
            'latest': {'symbol': sym, 'ts': last['ts'], 'price': last['price'], 'size': last['size'],
                       'maShort': last['maShort'], 'maLong': last['maLong'], 'source': last['source']},
            'ticks': [{'ts': t['ts'], 'price': t['price'], 'size': t['size'], 'id': t['id'], 'maShort': t['maShort'],
                       'maLong': t['maLong'], 'late': t['late']} for t in ts_list],
            'intervals': candles,
        }
        rule_fired = {}   # index in rule_list -> ts of its last alert
        cross_fired = None
        for i, t in enumerate(ts_list):
            if i == 0:
                continue
            p = ts_list[i - 1]
            for n, (rsym, kind, x, cooldown) in enumerate(rule_list):
                if rsym != sym or not rested(rule_fired.get(n), t['ts'], cooldown):
                    continue
                if kind == 'above' and p['price'] <= x < t['price']:
                    out['alerts'].append({'ts': t['ts'], 'symbol': sym, 'kind': 'price_above', 'price': t['price'], 'threshold': x})
                    rule_fired[n] = t['ts']
                if kind == 'below' and p['price'] >= x > t['price']:
                    out['alerts'].append({'ts': t['ts'], 'symbol': sym, 'kind': 'price_below', 'price': t['price'], 'threshold': x})
                    rule_fired[n] = t['ts']
            if cross_cooldown is None or not rested(cross_fired, t['ts'], cross_cooldown):
                continue
            if None not in (p['maShort'], p['maLong'], t['maShort'], t['maLong']):
                d0, d1 = p['maShort'] - p['maLong'], t['maShort'] - t['maLong']
                if d0 <= 0 < d1:
                    out['alerts'].append({'ts': t['ts'], 'symbol': sym, 'kind': 'golden_cross', 'price': t['price']})
                    cross_fired = t['ts']
                if d0 >= 0 > d1:
                    out['alerts'].append({'ts': t['ts'], 'symbol': sym, 'kind': 'death_cross', 'price': t['price']})
                    cross_fired = t['ts']
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
