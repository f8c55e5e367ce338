/** Short-lived notices in the corner (new alerts, control results): at most three on screen. */

export interface Toast {
  id: number;
  title: string;
  body: string;
  tone: 'info' | 'good' | 'bad' | 'alert';
}

/** Toasts on screen at once; the rest are counted as "+N more" (the Alerts page has them all). */
export const MAX_VISIBLE_TOASTS = 3;

/** `list`: the toasts on screen, oldest first. `more`: alert toasts that did not fit since the last clear. */
export const toasts = $state({ list: [] as Toast[], more: 0 });
let nextId = 1;

export function showToast(title: string, body: string, tone: Toast['tone'] = 'info', ms = 6000): void {
  const toast = { id: nextId++, title, body, tone };
  const list = [...toasts.list, toast];
  if (list.length > MAX_VISIBLE_TOASTS) {
    // The oldest alert gives way to the new one and is counted; control results are not dropped.
    const oldest = list.findIndex((t) => t.tone === 'alert');
    const dropped = list.splice(Math.max(oldest, 0), 1)[0]!;
    if (dropped.tone === 'alert') toasts.more++;
  }
  toasts.list = list;
  setTimeout(() => dismissToast(toast.id), ms);
}

export function dismissToast(id: number): void {
  toasts.list = toasts.list.filter((toast) => toast.id !== id);
  if (toasts.list.length === 0) toasts.more = 0;
}

/** Closes every toast and forgets the "+N more". */
export function clearToasts(): void {
  toasts.list = [];
  toasts.more = 0;
}
