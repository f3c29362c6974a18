// The live feed, GET /api/v1/events, read with fetch and a stream reader
// (EventSource cannot send the bearer header). Reconnects with backoff;
// after a reconnect, or when the server says `resync`, the screen is told
// to refetch, since events may have been missed.
import { token } from './api.js';

const BACKOFF_MS_MIN = 1000;
const BACKOFF_MS_MAX = 15000;

/** Splits SSE text into events; returns the unfinished rest. */
export function parseSse(buffer, emit) {
  const blocks = buffer.split(/\r?\n\r?\n/);
  const rest = blocks.pop();
  for (const block of blocks) {
    let type = 'message';
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) {
      try {
        emit({ ...JSON.parse(data.join('\n')), type });
      } catch (e) {
        console.warn('bondgate: unreadable event', e);
      }
    }
  }
  return rest;
}

/**
 * Listens until the page goes away. `onEvent(event)` gets each event
 * (`event.type` is its name); `onLive(bool)` whether the feed is up;
 * `onExpired()` when the session is gone.
 */
export function listen({ onEvent, onLive, onExpired }) {
  let delay = BACKOFF_MS_MIN;
  let first = true;
  const run = async () => {
    for (;;) {
      try {
        const res = await fetch('/api/v1/events', { headers: { authorization: `Bearer ${token()}`, accept: 'text/event-stream' } });
        if (res.status === 401) {
          onLive(false);
          onExpired();
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onLive(true);
        if (!first) onEvent({ type: 'resync', missed: null });
        first = false;
        delay = BACKOFF_MS_MIN;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = parseSse(buffer + value, onEvent);
        }
      } catch (e) {
        // Dropped or refused: try again below.
      }
      onLive(false);
      first = false;
      await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
      delay = Math.min(delay * 2, BACKOFF_MS_MAX);
    }
  };
  run();
}
