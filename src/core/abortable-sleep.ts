/** Waiting that an AbortSignal cuts short, for loops that poll or back off until they are stopped. */

/**
 * Resolves true after `ms`, or false as soon as `signal` aborts (at once when it already has); never
 * rejects, and leaves no timer or listener behind.
 */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
