/**
 * `coalesce(fn)`: a trigger that runs `fn` at once, never twice at the same time; triggers that
 * arrive while it runs collapse into one more run after it. Used to refresh counters on every
 * streamed log entry without a timer (timers may be throttled in a hidden window).
 */
export function coalesce(fn: () => Promise<unknown>): () => void {
  let running = false;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    void (async () => {
      do {
        again = false;
        try {
          await fn();
        } catch {
          // the caller's fn reports its own errors
        }
      } while (again);
      running = false;
    })();
  };
}
