// The browser PDA: one input that keeps the focus for the keyboard-wedge
// scanner (Enter submits), the next instruction big, ok/error as a
// full-width banner with icon and a tone, short-pick reasons as big buttons.
import { api } from './api.js';
import { beep } from './beep.js';
import { currentLang, t } from './i18n.js';
import { mountScanBox, scanQueue } from './scans.js';
import { errorText, requireRoles, toLogin } from './session.js';

const PICKER_ROLES = ['picker', 'manager', 'admin'];
const DEVICE_KEY = 'bondgate.pda.device';
const ICON = { ok: '✔', warning: '!', error: '✖', idle: '▶' };
const SHORTABLE = new Set(['bin', 'item', 'lot', 'qty']);
const DONE_STATES = new Set(['picked', 'short', 'cancelled', 'exception']);

const $ = (id) => document.getElementById(id);

/** This browser's PDA id: kept so the server's scan session follows it. */
function deviceId() {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id || !/^[a-z0-9]{8}$/.test(id)) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, '0')).join('');
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

const device = deviceId();
// The server answers a repeated (device, seq) from its record, so numbers
// must never repeat, even across reloads: start from the clock.
let seq = Date.now();
let answer = null;
/** The tote this picker scanned for the task in hand (the task records it only once picked). */
let scannedTote = null;
let me = null;

/** The code the prompt asks for: the server brackets it. */
function target(text) {
  const m = /\[([^\]]+)\]/.exec(text || '');
  return m ? m[1] : '';
}

function render() {
  const tone = answer ? answer.tone : 'idle';
  const kind = ICON[tone] ? tone : 'error';
  const banner = $('banner');
  banner.className = `banner banner-${kind}`;
  banner.dataset.tone = kind;
  $('banner-icon').textContent = ICON[kind];
  $('banner-word').textContent = answer ? t(`pda.${kind}`) : t('pda.start');
  const next = answer ? answer.next : null;
  $('step').textContent = next ? t(`pda.next.${next}`) : t('pda.start');
  $('target').textContent = answer ? target(answer.text) : '';
  // The server words each answer in both languages; a page message only in the page's.
  const said = currentLang() === 'zh' && answer?.text_zh ? answer.text_zh : answer?.text;
  $('detail').textContent = said ?? '';
  $('detail').lang = currentLang() === 'zh' && answer?.text_zh ? 'zh-CN' : 'en';
  $('reasons').hidden = next !== 'reason';
  $('short').hidden = !SHORTABLE.has(next);
}

// The picker's tasks as last fetched, for the task and tote lines; and the
// number of the latest fetch, so that an older answer arriving late is dropped.
let tasks = null;
let taskFetch = 0;

/** The task and tote lines from the tasks last fetched, in the page's language. */
function paintTask() {
  if (!tasks) return;
  const open = tasks.filter((x) => !DONE_STATES.has(x.state));
  const cur = open[0] ?? tasks[tasks.length - 1];
  $('task-line').textContent = open[0]
    ? t('pda.task.line', { order: cur.order_no, sku: cur.sku, picked: cur.picked_qty, qty: cur.qty })
    : t('pda.task.none');
  const tote = open[0] ? (open[0].tote ?? scannedTote) : cur?.tote;
  $('tote-line').textContent = tote ? t('pda.tote', { tote }) : t('pda.tote.none');
}

async function renderTask() {
  const mine = ++taskFetch;
  try {
    const got = await api('GET', `/pick-tasks?picker=${encodeURIComponent(me.username)}&limit=200`);
    if (mine !== taskFetch) return;
    tasks = got;
    paintTask();
  } catch (e) {
    if (mine === taskFetch) $('task-line').textContent = errorText(e);
  }
}

function localError(message) {
  answer = { ok: false, tone: 'error', text: message, next: answer?.next ?? null };
  render();
  beep('error');
}

const scans = scanQueue({
  busy: (on) => {
    if (on) {
      $('scan-form').setAttribute('aria-busy', 'true');
    } else {
      $('scan-form').removeAttribute('aria-busy');
      $('scan').focus();
    }
  },
  handle: async (code) => {
    seq += 1;
    const wanted = answer?.next;
    answer = await api('POST', '/pick-tasks/scan', { device, seq, barcode: code });
    if (wanted === 'tote' && answer.ok) scannedTote = code;
    if (answer.next === 'tote' || answer.next === 'done') scannedTote = null;
    render();
    beep(answer.tone === 'ok' ? 'ok' : answer.tone);
  },
  fail: (e) => {
    if (e.status === 401) {
      toLogin();
      return 'stop';
    }
    localError(errorText(e));
    return null;
  },
  full: () => localError(t('error.network')),
  // Scans may arrive while the task is being refetched too: they are sent after it.
  settle: () => renderTask(),
});
const send = (code) => scans.send(code);

me = await requireRoles(PICKER_ROLES);
if (me) {
  $('main').hidden = false;
  render();
  await renderTask();
  const input = $('scan');
  mountScanBox($('scan-form'), input, { onCode: send, onEmpty: () => localError(t('pda.scan.empty')) });
  for (const b of document.querySelectorAll('button[data-code]')) {
    b.addEventListener('click', () => send(b.dataset.code));
  }
  // Words only: nothing to fetch again.
  document.addEventListener('langchange', () => {
    render();
    paintTask();
  });
  input.focus();
  // Tests (and support) can tell when the page has loaded and listens.
  $('main').dataset.ready = 'true';
}
