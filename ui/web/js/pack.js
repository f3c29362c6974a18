// The pack station: one scan box that keeps the focus for the station's
// keyboard-wedge scanner (tote or order, each item, the box label, which
// weighs and packs), the answer big with an icon, words and a tone, the
// order's checklist, the scale live from the event feed, expected against
// actual weight with a plain message when they differ, and the label's
// print state with a reprint.
import { api } from './api.js';
import { beep } from './beep.js';
import { listen } from './events.js';
import { currentLang, t } from './i18n.js';
import { mountScanBox, scanQueue } from './scans.js';
import { errorText, requireRoles, toLogin } from './session.js';

const PACKER_ROLES = ['packer', 'manager', 'admin'];
const STATION_KEY = 'bondgate.pack.station';
const SEQ_KEY = 'bondgate.pack.seq';
const ICON = { ok: '✔', warning: '!', error: '✖', idle: '▶', busy: '…' };
const NEXT = new Set(['tote', 'item', 'box']);
/** Words the server brackets that are not codes: the kind of thing to scan. */
const PLACEHOLDERS = new Set(['TOTE', 'BOX']);
/** A scale with no reading for this long is asked about again (the server calls it offline after 3 s). */
const SCALE_STALE_MS = 3500;
/** How often a queued label's state is asked for. */
const PRINT_POLL_MS = 1500;

const $ = (id) => document.getElementById(id);

let me = null;
let stations = [];
let station = null;
let boxTypes = [];
/** The last answer to a scan at this station (or a local error shaped like one). */
let answer = null;
/** What is being packed: its checklist and plan (for the items' weight). */
let order = { no: null, checklist: [], plan: null };
/** The parcel last weighed at this station. */
let parcel = null;
/** The scale as last told: { online, grams, stable, at (ms, this clock) }. */
let scale = null;
let printPoll = null;
let busy = false;
/** The station's last scan number as the server had it when this page loaded (another browser's clock may run ahead). */
let seqFloor = 0;

function grams(n) {
  return n === null || n === undefined ? '–' : t('pack.grams', { n: n.toLocaleString(currentLang() === 'zh' ? 'zh-CN' : 'en-GB') });
}

/**
 * The next scan number for this station. The server keeps one session per
 * station and refuses a number older than its last, so numbers grow across
 * reloads and tabs: the clock, or one more than the last one sent here.
 */
function nextSeq() {
  const key = `${SEQ_KEY}.${station}`;
  const last = Math.max(Number(localStorage.getItem(key)) || 0, seqFloor);
  const seq = Math.max(Date.now(), last + 1);
  localStorage.setItem(key, String(seq));
  return seq;
}

/** The code the answer asks for: the server brackets it. */
function bracketed(text) {
  const m = /\[([^\]]+)\]/.exec(text || '');
  return m ? m[1] : '';
}

// ------------------------------------------------------------------ render

function bannerKind() {
  if (busy) return 'busy';
  if (!answer || answer.restored) return 'idle';
  return ICON[answer.tone] ? answer.tone : 'error';
}

function bannerWord(kind) {
  if (kind === 'busy') return t(answer?.next === 'box' ? 'pack.busy.weighing' : 'pack.busy');
  if (!answer) return t('pack.start');
  if (answer.local) return t('pack.error');
  if (answer.restored) return t('pack.resume', { order: answer.order_no });
  const p = answer.package;
  if (p && p.state === 'packed') return t(answer.ok ? 'pack.packed' : 'pack.already', { order: p.order_no });
  if (p && p.state === 'mismatch' && !answer.ok) return t('pack.mismatch');
  return t(`pack.${kind}`);
}

function renderBanner() {
  const kind = bannerKind();
  const banner = $('banner');
  banner.className = `banner banner-${kind === 'busy' ? 'idle' : kind}`;
  banner.dataset.tone = kind;
  $('banner-icon').textContent = ICON[kind];
  $('banner-word').textContent = bannerWord(kind);
}

function renderPrompt() {
  const next = answer && NEXT.has(answer.next) ? answer.next : 'tote';
  $('step').textContent = t(`pack.next.${next}`);
  let target = answer ? bracketed(answer.text) : '';
  if (PLACEHOLDERS.has(target)) target = '';
  if (next === 'box') {
    target = boxTypes
      .filter((b) => b.active)
      .map((b) => b.code)
      .join(' · ');
  }
  $('target').textContent = target;
  const hint = answer && !answer.ok && !answer.local && next === 'box' && !answer.package ? t('pack.hint.box') : '';
  $('hint').textContent = hint;
  $('hint').hidden = !hint;
  // The server words its answer in both languages; the page shows its own.
  const zh = currentLang() === 'zh' && answer?.text_zh;
  $('detail').textContent = answer ? (zh ? answer.text_zh : answer.text) : '';
  $('detail').lang = zh ? 'zh-CN' : 'en';
  $('cancel').hidden = !(answer && (answer.next === 'item' || answer.next === 'box'));
}

function renderChecklist() {
  const list = order.checklist;
  $('order-line').textContent = order.no ? t('pack.order', { order: order.no, tote: order.plan?.tote || '–' }) : t('pack.order.none');
  $('checklist').replaceChildren(
    ...list.map((l) => {
      const done = l.scanned >= l.qty;
      const li = document.createElement('li');
      li.className = `check-line${done ? ' done' : ''}`;
      li.dataset.sku = l.sku;
      li.dataset.done = String(done);
      const icon = document.createElement('span');
      icon.className = 'icon';
      icon.setAttribute('aria-hidden', 'true');
      icon.textContent = done ? '✔' : '○';
      const what = document.createElement('span');
      what.className = 'check-what';
      const name = document.createElement('strong');
      name.textContent = l.name;
      const sku = document.createElement('span');
      sku.className = 'check-sku';
      sku.textContent = l.sku;
      what.append(name, sku);
      const count = document.createElement('span');
      count.className = 'check-count';
      count.textContent = t('pack.item.count', { scanned: l.scanned, qty: l.qty });
      const state = document.createElement('span');
      state.className = 'check-state';
      state.textContent = t(done ? 'pack.item.done' : 'pack.item.todo');
      li.append(icon, what, count, state);
      return li;
    }),
  );
}

function renderScale() {
  const box = $('scale');
  let state = 'offline';
  if (scale?.online && scale.grams !== null && scale.grams !== undefined) state = scale.stable ? 'stable' : 'moving';
  else if (scale?.online) state = 'waiting';
  box.dataset.state = state;
  $('scale-grams').textContent = state === 'offline' ? '–' : grams(scale.grams);
  $('scale-icon').textContent = { stable: '✔', moving: '〜', waiting: '…', offline: '✖' }[state];
  $('scale-word').textContent = t(`pack.scale.${state}`);
  // Offline: how long since the last reading if there was one (the
  // server's last error may be older than the silence), else its reason.
  let why = '';
  if (state === 'offline' && scale?.age_ms !== null && scale?.age_ms !== undefined) {
    why = t('pack.scale.age', { s: Math.round((scale.age_ms + Date.now() - scale.at) / 1000) });
  } else if (state === 'offline' && scale?.error) why = t('pack.scale.why', { error: scale.error });
  $('scale-error').hidden = !why;
  $('scale-error').textContent = why;
}

/** The goods' weight from the plan: Σ unit weight × quantity. */
function itemsGrams() {
  if (!order.plan) return null;
  return order.plan.lines.reduce((sum, l) => sum + l.unit_grams * l.qty, 0);
}

function renderWeight() {
  const p = parcel && (!order.no || parcel.order_no === order.no) ? parcel : null;
  if (p) {
    $('weight-expected').textContent = t('pack.weight.range', { expected: grams(p.expected_grams), allowed: grams(p.allowed_grams) });
    $('weight-actual').textContent = grams(p.gross_grams);
  } else {
    const items = itemsGrams();
    $('weight-expected').textContent = items === null ? '–' : t('pack.weight.items', { items: grams(items) });
    $('weight-actual').textContent = '–';
  }
  // Before weighing: what the parcel should weigh in each box in use.
  const goods = p ? null : itemsGrams();
  const boxes = boxTypes.filter((b) => b.active);
  $('weight-boxes').hidden = goods === null || boxes.length === 0;
  $('weight-boxes').textContent =
    goods === null ? '' : t('pack.weight.boxes', { list: boxes.map((b) => `${b.code} ${grams(goods + b.tare_grams)}`).join(' · ') });
  const verdict = $('weight-verdict');
  verdict.hidden = !p;
  if (p) {
    const within = Math.abs(p.diff_grams) <= Math.abs(p.allowed_grams);
    const kind = within ? 'ok' : p.diff_grams > 0 ? 'heavy' : 'light';
    verdict.dataset.verdict = kind;
    verdict.className = `verdict verdict-${within ? 'ok' : 'bad'}`;
    $('weight-icon').textContent = within ? '✔' : '✖';
    $('weight-word').textContent = t(`pack.weight.${kind}`, { diff: grams(Math.abs(p.diff_grams)) });
  }
  const mismatch = p && p.state === 'mismatch' && !p.override_by;
  $('mismatch').hidden = !mismatch;
  $('mismatch').textContent = mismatch
    ? t(p.diff_grams > 0 ? 'pack.mismatch.heavy' : 'pack.mismatch.light', {
        actual: grams(p.gross_grams),
        expected: grams(p.expected_grams),
        allowed: grams(p.allowed_grams),
        diff: grams(Math.abs(p.diff_grams)),
      })
    : '';
}

function latestPrint(p) {
  return (p?.prints || []).reduce((a, b) => (!a || b.id > a.id ? b : a), null);
}

function renderParcel() {
  const p = parcel;
  $('parcel-none').hidden = !!p;
  $('parcel-facts').hidden = !p;
  $('parcel-no').textContent = p?.package_no || '–';
  $('parcel-waybill').textContent = p?.waybill_no || t('pack.parcel.no_waybill');
  const job = latestPrint(p);
  const labelState = !p ? null : p.state !== 'packed' ? 'none' : job ? job.state : 'none';
  $('label-state').hidden = !labelState;
  if (labelState) {
    $('label-state').dataset.state = labelState;
    $('label-state').className = `label-state label-${labelState}`;
    $('label-icon').textContent = { queued: '…', printed: '✔', cancelled: '✖', none: '–' }[labelState] || '?';
    $('label-word').textContent =
      p.state !== 'packed' ? t('pack.label.mismatch') : t(`pack.label.${labelState}`, { copy: job?.copy ?? 1 });
  }
  const err = job && job.state !== 'printed' ? job.last_error : null;
  $('label-error').hidden = !err;
  $('label-error').textContent = err ? t('pack.label.why', { error: err }) : '';
  $('reprint-form').hidden = !(p && p.state === 'packed');
  const s = stations.find((x) => x.id === station);
  const pr = s?.printer;
  let printer = 'none';
  if (pr) printer = pr.paper_out ? 'paper' : pr.cover_open ? 'cover' : pr.online === false ? 'offline' : pr.online ? 'online' : 'unknown';
  $('printer-line').textContent = t(`pack.printer.${printer}`);
}

let exceptions = [];

function renderExceptions() {
  const mine = exceptions.filter((e) => e.station === station);
  $('exceptions-none').hidden = mine.length > 0;
  $('exceptions').replaceChildren(
    ...mine.map((e) => {
      const li = document.createElement('li');
      const diff = e.gross_grams - e.expected_grams;
      li.textContent = t('pack.exception', {
        parcel: e.package_no,
        order: e.order_no,
        actual: grams(e.gross_grams),
        expected: grams(e.expected_grams),
        diff: `${diff > 0 ? '+' : '−'}${grams(Math.abs(diff))}`,
      });
      return li;
    }),
  );
}

function renderAll() {
  renderBanner();
  renderPrompt();
  renderChecklist();
  renderScale();
  renderWeight();
  renderParcel();
  renderExceptions();
}

// ------------------------------------------------------------------ data

async function loadStations() {
  stations = await api('GET', '/pack-stations');
  const select = $('station-select');
  select.replaceChildren(
    ...stations.map((s) => {
      const o = document.createElement('option');
      o.value = s.id;
      o.textContent = s.id;
      return o;
    }),
  );
  $('no-stations').hidden = stations.length > 0;
  $('scan-form').hidden = stations.length === 0;
  const saved = localStorage.getItem(STATION_KEY);
  station = stations.some((s) => s.id === station) ? station : stations.some((s) => s.id === saved) ? saved : stations[0]?.id ?? null;
  select.value = station ?? '';
  takeStationScale();
}

/** The scale as `GET /pack-stations` says it. */
function takeStationScale() {
  const s = stations.find((x) => x.id === station)?.scale;
  scale = s ? { online: s.online, grams: s.grams, stable: s.stable, error: s.last_error, age_ms: s.reading_age_ms, at: Date.now() } : null;
}

/**
 * Where the station's parcel stands, from the answer to its last scan: a
 * page opened (or a station chosen) mid-parcel shows the step, the order
 * and its checklist. A finished or refused last scan starts afresh.
 */
function restoreSession() {
  const last = stations.find((x) => x.id === station)?.last_answer;
  seqFloor = last?.seq ?? 0;
  answer = null;
  order = { no: null, checklist: [], plan: null };
  if (last && last.order_no && (last.next === 'item' || last.next === 'box')) {
    answer = { ...last, restored: true };
    takeOrder(last);
    if (order.no !== last.order_no) {
      // A refused box scan carries no checklist: ask the plan for the lines (all are in the box).
      order = { no: last.order_no, checklist: [], plan: null };
      loadPlan(last.order_no, true);
    }
  }
}

let stationsLoading = false;

/** Asks again for the stations' scales and printers; one request at a time. */
async function reloadStations() {
  if (stationsLoading) return;
  stationsLoading = true;
  const asked = Date.now();
  try {
    stations = await api('GET', '/pack-stations');
    // A scale event that came meanwhile is newer than this answer.
    if (!scale || scale.at <= asked) takeStationScale();
    // Another screen may have scanned here since: number above its scans.
    seqFloor = Math.max(seqFloor, stations.find((x) => x.id === station)?.last_answer?.seq ?? 0);
    renderScale();
    renderParcel();
  } catch (e) {
    if (e.status === 401) toLogin();
  } finally {
    stationsLoading = false;
  }
}

async function loadExceptions() {
  try {
    exceptions = await api('GET', '/pack-exceptions');
  } catch (e) {
    exceptions = [];
  }
  renderExceptions();
}

async function loadPlan(orderNo, fillChecklist = false) {
  try {
    const plan = await api('GET', `/packages/plan/${encodeURIComponent(orderNo)}`);
    if (order.no === orderNo) {
      order.plan = plan;
      if (fillChecklist && order.checklist.length === 0) {
        order.checklist = plan.lines.map((l) => ({ sku: l.sku, name: l.name, qty: l.qty, scanned: l.qty }));
      }
    }
  } catch (e) {
    // The weights are a help; the scan flow goes on without them.
  }
  renderChecklist();
  renderWeight();
}

/** Follows a queued label until it printed (or another parcel is shown). */
function watchPrint() {
  clearTimeout(printPoll);
  const job = latestPrint(parcel);
  if (!parcel || parcel.state !== 'packed' || !job || job.state !== 'queued') return;
  const no = parcel.package_no;
  printPoll = setTimeout(async () => {
    try {
      const p = await api('GET', `/packages/${encodeURIComponent(no)}`);
      if (parcel?.package_no === no) setParcel(p);
    } catch (e) {
      if (e.status === 401) toLogin();
    }
    if (parcel?.package_no === no) watchPrint();
  }, PRINT_POLL_MS);
}

function setParcel(p) {
  // A reprint's message was about the parcel shown before.
  if (p?.package_no !== parcel?.package_no) $('reprint-message').textContent = '';
  parcel = p;
  renderWeight();
  renderParcel();
  watchPrint();
  // The printer's state matters now: ask for it again.
  if (p) reloadStations();
}

/** Takes in the checklist, order and parcel an answer carries. */
function takeOrder(a) {
  if (a.checklist.length > 0) {
    const changed = a.order_no !== order.no;
    order = { no: a.order_no, checklist: a.checklist, plan: changed ? null : order.plan };
    if (changed && a.order_no) loadPlan(a.order_no);
  } else if (a.order_no && a.order_no === order.no) {
    // A refusal at the box keeps the order: its checklist stands.
  } else if (a.package && a.package.order_no === order.no && a.package.state === 'packed') {
    // Packed: the finished checklist stays until the next tote.
    order.checklist = order.checklist.map((l) => ({ ...l, scanned: Math.max(l.scanned, l.qty) }));
  } else if (!a.order_no) {
    // Cancelled, or a tote refused: no order is in progress.
    order = { no: null, checklist: [], plan: null };
  }
  // The last parcel stays shown (its label may still be printing) until another is weighed.
  if (a.package) {
    setParcel(a.package);
    loadExceptions();
  }
  renderWeight();
}

// ------------------------------------------------------------------ scans

function localError(message) {
  answer = { ok: false, tone: 'error', text: message, next: answer?.next ?? 'tote', local: true };
  renderBanner();
  renderPrompt();
  beep('error');
}

const scans = scanQueue({
  busy: (on) => {
    busy = on;
    if (on) {
      $('scan-form').setAttribute('aria-busy', 'true');
      renderBanner();
      $('busy').textContent = '';
    } else {
      $('scan-form').removeAttribute('aria-busy');
      renderBanner();
      $('scan').focus();
    }
  },
  handle: async (code) => {
    if (!station) return;
    const a = await api('POST', `/pack-stations/${encodeURIComponent(station)}/scans`, { seq: nextSeq(), code });
    answer = a;
    takeOrder(a);
    if (!scans.pending()) busy = false;
    renderBanner();
    renderPrompt();
    renderChecklist();
    beep(a.tone === 'ok' ? 'ok' : a.tone);
  },
  fail: (e) => {
    if (e.status === 401) {
      toLogin();
      return 'stop';
    }
    // Refused as older than the station's last scan: learn that number.
    if (e.status === 422) reloadStations();
    busy = false;
    localError(errorText(e));
    return null;
  },
  full: () => localError(t('error.network')),
});
const send = (code) => scans.send(code);

// ------------------------------------------------------------------ events

function onEvent(e) {
  if (e.type === 'scale' && e.station === station) {
    scale = { online: e.online, grams: e.grams, stable: e.stable, error: e.online ? null : scale?.error, age_ms: e.online ? 0 : null, at: Date.now() };
    renderScale();
    if (!e.online) reloadStations();
  } else if (e.type === 'pack' && e.package?.station === station) {
    // Packed or refused here, perhaps from the station's own scanner.
    if (!parcel || parcel.package_no === e.package.package_no || e.package.weighed_at >= parcel.weighed_at) setParcel(e.package);
    loadExceptions();
  } else if (e.type === 'resync') {
    reloadStations();
    loadExceptions();
    if (parcel) {
      api('GET', `/packages/${encodeURIComponent(parcel.package_no)}`).then(setParcel, () => {});
    }
  }
}

function setLive(on) {
  $('live').dataset.live = on ? 'on' : 'off';
  $('live-text').textContent = t(on ? 'live.on' : 'live.off');
}

async function chooseStation(id) {
  station = id;
  localStorage.setItem(STATION_KEY, id);
  setParcel(null);
  try {
    await loadStations();
  } catch (e) {
    if (e.status === 401) toLogin();
  }
  restoreSession();
  renderAll();
  loadExceptions();
}

me = await requireRoles(PACKER_ROLES);
if (me) {
  $('main').hidden = false;
  setLive(false);
  try {
    await loadStations();
    boxTypes = await api('GET', '/box-types');
  } catch (e) {
    $('busy').textContent = errorText(e);
  }
  restoreSession();
  renderAll();
  loadExceptions();
  $('station-select').addEventListener('change', async (ev) => {
    await chooseStation(ev.target.value);
    $('scan').focus();
  });
  const input = $('scan');
  mountScanBox($('scan-form'), input, { onCode: send, onEmpty: () => localError(t('pack.scan.empty')) });
  $('cancel').addEventListener('click', () => send('#CANCEL'));
  $('reprint-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!parcel) return;
    const no = parcel.package_no;
    const reason = t(`pack.reprint.${$('reprint-reason').value}`);
    const button = $('reprint');
    button.disabled = true;
    $('reprint-message').textContent = t('pack.reprint.busy');
    try {
      const job = await api('POST', `/packages/${encodeURIComponent(no)}/reprint`, { reason });
      $('reprint-message').textContent = t('pack.reprint.done', { copy: job.copy });
      beep('ok');
      setParcel(await api('GET', `/packages/${encodeURIComponent(no)}`));
    } catch (e) {
      if (e.status === 401) toLogin();
      $('reprint-message').textContent = errorText(e);
      beep('error');
    } finally {
      button.disabled = false;
      input.focus();
    }
  });
  document.addEventListener('langchange', () => {
    renderAll();
    setLive($('live').dataset.live === 'on');
  });
  // A scale that stops sending is offline for the server after 3 s, with
  // no event to say so: ask again when the feed has been quiet that long.
  setInterval(() => {
    if (!scale || Date.now() - scale.at > SCALE_STALE_MS) reloadStations();
  }, 2000);
  listen({ onEvent, onLive: setLive, onExpired: toLogin });
  input.focus();
  // Tests (and support) can tell when the page has loaded and listens.
  $('main').dataset.ready = 'true';
}
