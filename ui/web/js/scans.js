// Scans from a keyboard-wedge scanner, sent one at a time. A scanner does
// not wait for the answer, so codes that arrive meanwhile are queued, never
// lost; after a failure the rest are dropped, since they were meant for the
// step that failed. Shared by the PDA and the pack station.

/** More than this many unanswered scans means the network is gone: refuse rather than pile up. */
export const QUEUE_MAX = 20;

/**
 * A queue that sends with `handle(code)` (which shows the answer). On a
 * failure the queue is emptied and `fail(error)` shows it (returning
 * `'stop'` ends sending for good, e.g. on the way to the login page);
 * `full()` when too many wait; `settle()` once the queue is empty (scans
 * that arrive while it runs are sent after it); `busy(on)` when sending
 * starts and ends.
 */
export function scanQueue({ handle, fail, full, settle = async () => {}, busy = () => {} }) {
  const queue = [];
  let running = false;
  async function drain() {
    running = true;
    busy(true);
    do {
      while (queue.length) {
        const code = queue.shift();
        try {
          await handle(code);
        } catch (e) {
          queue.length = 0;
          if ((await fail(e)) === 'stop') return;
        }
      }
      await settle();
    } while (queue.length);
    running = false;
    busy(false);
  }
  return {
    send(code) {
      if (queue.length >= QUEUE_MAX) {
        full();
        return;
      }
      queue.push(code);
      if (!running) drain();
    },
    /** Scans still waiting to be sent. */
    pending: () => queue.length,
  };
}

/**
 * The scan box: Enter sends what was typed to `onCode(code)` (an empty box
 * calls `onEmpty()` and keeps the focus), and the focus is taken back
 * whenever it falls to the page itself, so a wedge scanner's codes always
 * land here.
 */
export function mountScanBox(form, input, { onCode, onEmpty }) {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const code = input.value.trim();
    input.value = '';
    if (!code) {
      onEmpty();
      input.focus();
      return;
    }
    onCode(code);
  });
  input.addEventListener('blur', () => {
    setTimeout(() => {
      const active = document.activeElement;
      if (!active || active === document.body) input.focus();
    }, 150);
  });
}
