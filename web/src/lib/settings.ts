/** What the dashboard keeps in localStorage: the theme and the admin key. */

const THEME_KEY = 'streamlines.theme';
const ADMIN_KEY = 'streamlines.adminKey';

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
