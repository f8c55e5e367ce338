/** A tiny History API router: the path is state; links with data-link navigate without reloading. */

export type Route =
  | { page: 'markets' }
  | { page: 'symbol'; symbol: string }
  | { page: 'alerts' }
  | { page: 'pipeline' }
  | { page: 'not-found'; path: string };

export function parseRoute(path: string): Route {
  if (path === '/' || path === '') return { page: 'markets' };
  if (path === '/alerts') return { page: 'alerts' };
  if (path === '/pipeline') return { page: 'pipeline' };
  const match = /^\/symbol\/([^/]+)$/.exec(path);
  if (match) return { page: 'symbol', symbol: decodeURIComponent(match[1]!).toUpperCase() };
  return { page: 'not-found', path };
}

export const router = $state({ route: parseRoute(location.pathname) as Route });

export function navigate(path: string): void {
  if (path === location.pathname + location.search) return;
  history.pushState(null, '', path);
  router.route = parseRoute(location.pathname);
  window.scrollTo(0, 0);
}

window.addEventListener('popstate', () => {
  router.route = parseRoute(location.pathname);
});

// Same-origin links navigate in place unless the user asks for a new tab.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) {
    return;
  }
  const anchor = (event.target as Element | null)?.closest?.('a[data-link]') as HTMLAnchorElement | null;
  if (!anchor || anchor.origin !== location.origin) return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search);
});
