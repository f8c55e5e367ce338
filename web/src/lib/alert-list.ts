/**
 * The Alerts page's list as data: pages of older alerts appended without duplicates, and the window
 * of rows a virtualised list draws. Pure, so it is tested without a browser (alert-list.test.ts).
 */

import type { Alert } from './api.ts';

/** An alert as the list holds it: the API's record. */
export type ListedAlert = Alert;

function sameAlert(a: ListedAlert, b: ListedAlert): boolean {
  return (
    a.ts === b.ts &&
    a.symbol === b.symbol &&
    a.kind === b.kind &&
    a.price === b.price &&
    a.threshold === b.threshold &&
    a.message === b.message
  );
}

/**
 * Appends an older page (ascending by ts, as the API answers `to=oldest.ts`) to `newestFirst`. The
 * page repeats the alerts at the boundary ts that are already listed: those are skipped, one for one.
 * Returns the merged list and how many alerts were new.
 */
export function appendOlder(
  newestFirst: readonly ListedAlert[],
  pageAscending: readonly ListedAlert[],
): { list: ListedAlert[]; added: number } {
  const oldest = newestFirst[newestFirst.length - 1];
  // The alerts at the boundary ts are the last ones listed: scan back from the end, not the whole list.
  const unmatched: ListedAlert[] = [];
  for (let i = newestFirst.length - 1; i >= 0 && newestFirst[i]!.ts === oldest?.ts; i--) {
    unmatched.push(newestFirst[i]!);
  }
  const older: ListedAlert[] = [];
  for (let i = pageAscending.length - 1; i >= 0; i--) {
    const alert = pageAscending[i]!;
    const match =
      oldest !== undefined && alert.ts === oldest.ts ? unmatched.findIndex((b) => sameAlert(b, alert)) : -1;
    if (match >= 0) unmatched.splice(match, 1);
    else if (oldest === undefined || alert.ts <= oldest.ts) older.push(alert);
  }
  return { list: older.length === 0 ? [...newestFirst] : newestFirst.concat(older), added: older.length };
}

/**
 * Rows `[start, end)` to draw for a scroll position: the rows on screen and at least `overscan` more
 * either side. `start` moves in steps of `overscan`, so a slow scroll redraws once every `overscan`
 * rows rather than at every pixel.
 */
export function visibleWindow(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  count: number,
  overscan = 10,
): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const start = Math.min(count, Math.max(0, Math.floor(first / overscan) * overscan - overscan));
  const end = Math.min(count, start + windowSize(viewportHeight, rowHeight, overscan));
  return { start, end };
}

/**
 * The most rows `visibleWindow` returns for a viewport. Keyed by `row % windowSize`, rows in a window
 * have distinct keys, and a row that enters the window as another leaves takes over its element.
 */
export function windowSize(viewportHeight: number, rowHeight: number, overscan = 10): number {
  return Math.ceil(viewportHeight / rowHeight) + 3 * overscan;
}
