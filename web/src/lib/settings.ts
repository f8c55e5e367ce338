/** What the dashboard keeps in localStorage: the theme, the admin key and which alerts pop up. */

const THEME_KEY = 'streamlines.theme';
const ADMIN_KEY = 'streamlines.adminKey';
const TOAST_KINDS_KEY = 'streamlines.toastKinds';

function read(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Private mode or storage disabled: the setting lasts for this page only.
  }
}

export type Theme = 'dark' | 'light';

/** The saved theme, or the system's preference. */
export function currentTheme(): Theme {
  const saved = read(THEME_KEY);
  if (saved === 'dark' || saved === 'light') return saved;
  return matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}

export function setTheme(theme: Theme): void {
  document.documentElement.dataset.theme = theme;
  write(THEME_KEY, theme);
}

export function adminKey(): string {
  return read(ADMIN_KEY) ?? '';
}

export function setAdminKey(key: string): void {
  write(ADMIN_KEY, key === '' ? null : key);
}

/**
 * Alert kinds shown as toasts unless the user picks others: the rules a user set up and anomalies.
 * Golden and death crosses on tick averages are frequent; they stay on the Alerts page.
 */
export const DEFAULT_TOAST_KINDS: readonly string[] = ['price_above', 'price_below', 'anomaly'];

export function toastKinds(): string[] {
  const saved = read(TOAST_KINDS_KEY);
  if (saved !== null) {
    try {
      const kinds = JSON.parse(saved) as unknown;
      if (Array.isArray(kinds) && kinds.every((kind) => typeof kind === 'string')) return kinds;
    } catch {
      // A damaged value: fall back to the defaults.
    }
  }
  return [...DEFAULT_TOAST_KINDS];
}

export function setToastKinds(kinds: readonly string[]): void {
  write(TOAST_KINDS_KEY, JSON.stringify(kinds));
}
