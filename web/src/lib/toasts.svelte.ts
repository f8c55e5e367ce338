/** Short-lived notices in the corner (new alerts, control results). */

export interface Toast {
  id: number;
  title: string;
  body: string;
  tone: 'info' | 'good' | 'bad' | 'alert';
}

export const toasts = $state({ list: [] as Toast[] });
let nextId = 1;
const MAX_TOASTS = 5;

export function showToast(title: string, body: string, tone: Toast['tone'] = 'info', ms = 6000): void {
  const toast = { id: nextId++, title, body, tone };
  toasts.list = [...toasts.list, toast].slice(-MAX_TOASTS);
  setTimeout(() => dismissToast(toast.id), ms);
}

export function dismissToast(id: number): void {
  toasts.list = toasts.list.filter((toast) => toast.id !== id);
}
