// The warehouse manager's dashboard: the order pipeline with how long
// orders wait at each stage, the exceptions with what can be done about
// them, work per hour, customs state per order with its receipts, the gate
// log, every device, stock by SKU / bin / lot with expiry warnings and the
// bonded-ledger reconciliation. Kept current from the live feed: every
// event refetches what it could have changed (at most once a second), and
// the ages tick on their own.
import { api } from './api.js';
import { listen } from './events.js';
import { currentLang, t } from './i18n.js';
import { errorText, requireRoles, toLogin } from './session.js';

const MANAGER_ROLES = ['manager', 'admin'];
/** A lot expiring within this many days is flagged. */
export const EXPIRY_WARN_DAYS = 30;
const GATE_LOG_MAX = 50;
const REFRESH_MIN_MS = 1000;
const AGE_TICK_MS = 30000;
/**
 * The bonded-ledger check sums every movement (a second or more with
 * millions of them): it is run at most this often, or when asked.
 */
const LEDGER_EVERY_MS = 60000;
const STAGES = ['locked', 'picking', 'picked', 'awaiting_release', 'released', 'exception', 'shipped', 'cancelled'];
/** The order state a stage's orders are listed by. */
const STAGE_STATE = { awaiting_release: 'packed', released: 'packed' };
/** Stages that are a count of the last 24 hours, not a queue. */
const WINDOW_STAGES = new Set(['shipped', 'cancelled']);
const SERIES = [
  { key: 'pick_lines', label: 'dash.series.picks' },
  { key: 'parcels', label: 'dash.series.parcels' },
  { key: 'exits', label: 'dash.series.exits' },
];

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('aria-') || k === 'role' || k === 'for' || k === 'scope' || k === 'colspan') e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
};

const view = {
  summary: null,
  exceptions: [],
  gates: [],
  decisions: [],
  devices: [],
  stations: [],
  stock: null,
  ledger: [],
  integrity: null,
  stage: null,
  stageOrders: [],
  customsOrder: null,
  customs: null,
  locations: [],
  open: null,
};

// ------------------------------------------------------------ formatting

function locale() {
  return currentLang() === 'zh' ? 'zh-CN' : 'en-GB';
}

function fmtTime(iso) {
  if (!iso) return '–';
  return new Date(iso).toLocaleString(locale(), { hour12: false });
}

function fmtHour(iso) {
  return new Date(iso).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', hour12: false });
}

function fmtNum(n) {
  return Number(n ?? 0).toLocaleString(locale());
}

/** How long ago, in words: "3 min", "2 h 05 min", "1 d 4 h". */
export function fmtAge(iso, now = Date.now()) {
  if (!iso) return '–';
  const mins = Math.max(0, Math.floor((now - new Date(iso).getTime()) / 60000));
  if (mins < 60) return t('dash.age.min', { m: mins });
  const h = Math.floor(mins / 60);
  if (h < 24) return t('dash.age.hour', { h, m: String(mins % 60).padStart(2, '0') });
  return t('dash.age.day', { d: Math.floor(h / 24), h: h % 24 });
}

/** Days from `today` to an expiry date (both YYYY-MM-DD): negative once expired. */
export function daysLeft(expiry, today) {
  const utc = (s) => {
    const [y, m, d] = s.split('-').map(Number);
    return Date.UTC(y, m - 1, d);
  };
  return Math.round((utc(expiry) - utc(today)) / 86400000);
}

/** The warehouse's business date, as the server counted expiries on (China Standard Time). */
function businessToday() {
  return view.stock?.expiry?.today ?? new Date(Date.now() + 8 * 3600000).toISOString().slice(0, 10);
}

function expiryState(expiry) {
  if (!expiry) return { kind: 'none', text: t('dash.expiry.none') };
  const days = daysLeft(expiry, businessToday());
  if (days < 0) return { kind: 'expired', text: t('dash.expiry.expired', { date: expiry }) };
  if (days <= EXPIRY_WARN_DAYS) return { kind: 'soon', text: t('dash.expiry.soon', { date: expiry, days }) };
  return { kind: 'ok', text: expiry };
}

function badge(kind, icon, text) {
  return el('span', { class: `badge badge-${kind}` }, el('span', { 'aria-hidden': 'true' }, `${icon} `), text);
}

function showError(e) {
  if (e?.status === 401) {
    toLogin();
    return;
  }
  const box = $('dash-error');
  box.textContent = errorText(e);
  box.hidden = false;
}

function clearError() {
  $('dash-error').hidden = true;
}

// ------------------------------------------------------------ pipeline

function renderPipeline() {
  const s = view.summary;
  if (!s) return;
  const byStage = new Map(s.pipeline.map((p) => [p.stage, p]));
  $('stages').replaceChildren(
    ...STAGES.map((name) => {
      const p = byStage.get(name) ?? { count: 0 };
      const windowed = WINDOW_STAGES.has(name);
      const age = !windowed && p.oldest_at ? t('dash.stage.oldest', { age: fmtAge(p.oldest_at), order: p.oldest_order_no ?? '' }) : '';
      const button = el(
        'button',
        {
          type: 'button',
          class: `stage stage-${name}${p.count > 0 && name === 'exception' ? ' stage-alert' : ''}`,
          dataset: { stage: name, count: String(p.count) },
          'aria-pressed': String(view.stage === name),
        },
        el('span', { class: 'stage-name' }, t(`dash.stage.${name}`)),
        el('span', { class: 'stage-count' }, fmtNum(p.count)),
        el('span', { class: 'stage-age' }, windowed ? t('dash.stage.window') : age || t('dash.stage.empty')),
      );
      button.addEventListener('click', () => selectStage(view.stage === name ? null : name));
      return el('li', {}, button);
    }),
  );
  renderStageOrders();
}

async function selectStage(name) {
  view.stage = name;
  view.stageOrders = [];
  renderPipeline();
  if (name) await loadStageOrders();
}

async function loadStageOrders() {
  const name = view.stage;
  if (!name) return;
  try {
    const state = STAGE_STATE[name] ?? name;
    const list = await api('GET', `/orders?state=${encodeURIComponent(state)}&limit=200`);
    if (view.stage !== name) return;
    view.stageOrders = list.sort((a, b) => (a.state_at < b.state_at ? -1 : 1));
    renderStageOrders();
  } catch (e) {
    showError(e);
  }
}

function orderLink(orderNo) {
  if (!orderNo) return '–';
  const b = el('button', { type: 'button', class: 'link', dataset: { order: orderNo } }, orderNo);
  b.addEventListener('click', () => showCustoms(orderNo, true));
  return b;
}

function renderStageOrders() {
  const box = $('stage-orders');
  box.hidden = !view.stage;
  if (!view.stage) return;
  const packedNote = STAGE_STATE[view.stage] ? t('dash.stage.packed_note') : '';
  $('stage-orders-title').textContent = `${t(`dash.stage.${view.stage}`)} ${packedNote}`.trim();
  $('stage-orders-rows').replaceChildren(
    ...(view.stageOrders.length
      ? view.stageOrders.map((o) =>
          el(
            'tr',
            {},
            el('td', {}, orderLink(o.order_no)),
            el('td', {}, t(`order.state.${o.state}`)),
            el('td', {}, fmtAge(o.state_at)),
            el('td', { class: 'num' }, fmtNum(o.units)),
            el('td', { class: 'num' }, `¥${o.actual_paid}`),
            el('td', {}, o.reason ?? ''),
          ),
        )
      : [el('tr', {}, el('td', { colspan: '6', class: 'muted' }, t('dash.none')))]),
  );
}

// ------------------------------------------------------------ exceptions

const ACTION_NEEDS = {
  cancel_order: 'reason',
  override_weight: 'reason',
  move_to_inspection: 'bin',
  close_task: 'note',
  count_bin: 'count',
};

/**
 * Draws the exception list. While the manager is filling in an action's
 * form the list is left as it is (a live update must not wipe what they
 * type) unless `force`; it is redrawn when the form closes.
 */
function renderExceptions(force = false) {
  const s = view.summary;
  $('exceptions-counts').replaceChildren(
    ...(s?.exceptions ?? []).map((c) => badge('warn', '⚠', t('dash.exc.count', { kind: t(`dash.exc.${c.kind}`), n: c.count }))),
  );
  if (view.open && !force && document.querySelector('.action-form')) return;
  $('exceptions-none').hidden = view.exceptions.length > 0;
  $('exception-list').replaceChildren(...view.exceptions.map(renderException));
}

function exceptionKey(x) {
  return `${x.kind}:${x.id}`;
}

function renderException(x) {
  const key = exceptionKey(x);
  const facts = [x.order_no && t('dash.exc.order', { order: x.order_no }), x.package_no && t('dash.exc.package', { package: x.package_no })].filter(Boolean).join(' · ');
  const li = el(
    'li',
    { class: `exception exception-${x.kind}`, dataset: { kind: x.kind, id: String(x.id) } },
    el('p', { class: 'exception-head' }, el('span', { 'aria-hidden': 'true' }, '⚠ '), el('strong', {}, t(`dash.exc.${x.kind}`)), ` · ${fmtAge(x.at)}`),
    el('p', { class: 'exception-detail', lang: currentLang() === 'zh' ? 'zh-CN' : 'en' }, currentLang() === 'zh' ? x.detail_zh : x.detail),
    facts ? el('p', { class: 'muted' }, facts) : null,
  );
  const actions = el('p', { class: 'row exception-actions' });
  for (const a of x.actions) {
    const b = el('button', { type: 'button', class: a === 'view_customs' ? 'ghost' : '', dataset: { action: a } }, t(`dash.act.${a}`));
    b.addEventListener('click', () => {
      if (a === 'view_customs') {
        showCustoms(x.order_no, true);
        return;
      }
      view.open = view.open?.key === key && view.open.action === a ? null : { key, action: a };
      renderExceptions(true);
      const first = document.querySelector(`[data-form="${key}"] input, [data-form="${key}"] select`);
      if (first) first.focus();
    });
    actions.append(b);
  }
  li.append(actions);
  if (view.open?.key === key) li.append(actionForm(x, view.open.action));
  return li;
}

function field(id, label, input) {
  input.id = id;
  return el('div', { class: 'field' }, el('label', { for: id }, label), input);
}

function actionForm(x, action) {
  const key = exceptionKey(x);
  const form = el('form', { class: 'action-form', dataset: { form: key, action } });
  const fid = `f-${x.kind}-${x.id}`;
  const need = ACTION_NEEDS[action];
  let inputs = [];
  if (need === 'reason' || need === 'note') {
    const input = el('input', { name: need, required: true, autocomplete: 'off' });
    form.append(field(`${fid}-${need}`, t(`dash.form.${need}`), input));
    inputs = [input];
  } else if (need === 'bin') {
    const select = el('select', { name: 'bin', required: true });
    const bins = view.locations.filter((l) => l.kind === 'inspection' || l.kind === 'quarantine');
    select.append(...bins.map((l) => el('option', { value: l.code }, `${l.code} (${t(`dash.bin.${l.kind}`)})`)));
    form.append(field(`${fid}-bin`, t('dash.form.bin'), select));
    if (!bins.length) form.append(el('p', { class: 'error-text' }, t('dash.form.no_bins')));
    inputs = [select];
  } else if (need === 'count') {
    form.append(el('p', { class: 'muted' }, t('dash.form.count_hint', { sku: x.sku, bin: x.bin })));
    const lots = (view.countLots?.[key] ?? []);
    if (!lots.length) loadCountLots(x);
    lots.forEach((lot, i) => {
      const input = el('input', { name: `lot-${i}`, type: 'number', min: '0', step: '1', required: true, inputMode: 'numeric' });
      input.dataset.batch = lot.batch;
      input.dataset.expiry = lot.expiry ?? '';
      form.append(field(`${fid}-lot-${i}`, t('dash.form.counted', { batch: lot.batch || '–', expiry: lot.expiry || '–', books: lot.total }), input));
      inputs.push(input);
    });
  }
  const error = el('p', { class: 'error-text', role: 'alert', hidden: true });
  const submit = el('button', { type: 'submit', class: 'primary' }, t(`dash.act.${action}`));
  const cancel = el('button', { type: 'button', class: 'ghost' }, t('dash.form.back'));
  cancel.addEventListener('click', () => {
    view.open = null;
    renderExceptions(true);
  });
  form.append(el('p', { class: 'row' }, submit, cancel), error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await runAction(x, action, inputs);
      view.open = null;
      await refreshAll();
    } catch (e) {
      if (e.status === 401) toLogin();
      error.textContent = errorText(e);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

async function loadCountLots(x) {
  try {
    const report = await api('GET', `/inventory?sku=${encodeURIComponent(x.sku)}&bin=${encodeURIComponent(x.bin)}&include_empty=true`);
    view.countLots = { ...(view.countLots ?? {}), [exceptionKey(x)]: report.rows.length ? report.rows : [{ batch: '', expiry: null, total: 0 }] };
    renderExceptions(true);
  } catch (e) {
    showError(e);
  }
}

function runAction(x, action, inputs) {
  const value = inputs[0]?.value.trim();
  const enc = encodeURIComponent;
  switch (action) {
    case 'cancel_order':
      return api('POST', `/orders/${enc(x.order_no)}/cancel`, { reason: value });
    case 'override_weight':
      return api('POST', `/packages/${enc(x.package_no)}/override`, { reason: value });
    case 'move_to_inspection':
      return api('POST', `/customs-tasks/${x.id}/move`, { bin: value });
    case 'close_task':
      return api('POST', `/customs-tasks/${x.id}/close`, { note: value });
    case 'count_bin':
      return api('POST', '/inventory/counts', {
        count_no: `CNT-${x.id}-${Date.now()}`,
        bin: x.bin,
        lines: inputs.map((i) => ({ sku: x.sku, batch: i.dataset.batch, expiry: i.dataset.expiry || null, counted: Number(i.value) })),
      });
    default:
      return Promise.resolve();
  }
}

// ------------------------------------------------------------ throughput

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function chart(series, hours) {
  const W = 480;
  const H = 140;
  const pad = 20;
  const values = hours.map((h) => h[series.key]);
  const max = Math.max(1, ...values);
  const bw = (W - pad) / hours.length;
  const total = values.reduce((a, b) => a + b, 0);
  const title = `${t(series.label)}: ${t('dash.throughput.total', { n: fmtNum(total), max: fmtNum(Math.max(...values)) })}`;
  const s = svg('svg', { viewBox: `0 0 ${W} ${H + 18}`, role: 'img', 'aria-label': title, class: `chart chart-${series.key}` });
  s.append(svg('line', { x1: pad, y1: H, x2: W, y2: H, class: 'axis' }));
  s.append(Object.assign(svg('text', { x: 0, y: 12, class: 'tick' }), { textContent: fmtNum(max) }));
  hours.forEach((h, i) => {
    const v = h[series.key];
    const bh = Math.round((v / max) * (H - 16));
    const bar = svg('rect', { x: pad + i * bw + 1, y: H - bh, width: Math.max(1, bw - 2), height: bh, class: 'bar' });
    const tip = svg('title');
    tip.textContent = `${fmtHour(h.hour)} · ${fmtNum(v)}`;
    bar.append(tip);
    s.append(bar);
    if ((i % 6 === 0 && i < hours.length - 3) || i === hours.length - 1) {
      const last = i === hours.length - 1;
      const label = svg('text', { x: last ? W : pad + i * bw, y: H + 15, class: 'tick', 'text-anchor': last ? 'end' : 'start' });
      label.textContent = fmtHour(h.hour);
      s.append(label);
    }
  });
  return el('figure', { class: 'chart-box', dataset: { series: series.key, total: String(total) } }, el('figcaption', {}, title), s);
}

function renderThroughput() {
  const hours = view.summary?.throughput ?? [];
  $('charts').replaceChildren(...SERIES.map((s) => chart(s, hours)));
  $('throughput-rows').replaceChildren(
    ...hours
      .slice()
      .reverse()
      .map((h) =>
        el('tr', {}, el('th', { scope: 'row' }, fmtHour(h.hour)), el('td', { class: 'num' }, fmtNum(h.pick_lines)), el('td', { class: 'num' }, fmtNum(h.units_picked)), el('td', { class: 'num' }, fmtNum(h.parcels)), el('td', { class: 'num' }, fmtNum(h.exits))),
      ),
  );
}

// ------------------------------------------------------------ customs

const CUSTOMS_KIND = { released: 'ok', no_receipt: 'idle', pending: 'idle', held: 'warn', rejected: 'err', cancelled: 'err', processing_error: 'err', unrecognised: 'err' };
const CUSTOMS_ICON = { ok: '✔', idle: '…', warn: '⚠', err: '✖' };

function customsBadge(state, text) {
  const kind = CUSTOMS_KIND[state] ?? 'err';
  return badge(kind, CUSTOMS_ICON[kind], text ?? t(`customs.state.${state}`));
}

function renderCustomsCounts() {
  const counts = view.summary?.customs ?? [];
  $('customs-counts').replaceChildren(
    ...(counts.length ? counts.map((c) => customsBadge(c.state, t('dash.customs.count', { state: t(`customs.state.${c.state}`), n: c.count }))) : [el('span', { class: 'muted' }, t('dash.customs.no_open'))]),
  );
}

async function showCustoms(orderNo, scroll) {
  if (!orderNo) return;
  $('customs-order').value = orderNo;
  view.customsOrder = orderNo;
  try {
    const [order, customs] = await Promise.all([api('GET', `/orders/${encodeURIComponent(orderNo)}`), api('GET', `/orders/${encodeURIComponent(orderNo)}/customs`)]);
    view.customs = { order, customs };
  } catch (e) {
    view.customs = { error: e.status === 404 ? t('dash.customs.unknown', { order: orderNo }) : errorText(e) };
  }
  renderCustoms();
  if (scroll) $('customs').scrollIntoView({ block: 'start' });
}

function renderCustoms() {
  const box = $('customs-view');
  const v = view.customs;
  if (!v) {
    box.replaceChildren();
    return;
  }
  if (v.error) {
    box.replaceChildren(el('p', { class: 'error-text' }, v.error));
    return;
  }
  const { order, customs } = v;
  const head = el(
    'div',
    { class: 'customs-head', dataset: { order: order.order_no, state: customs.state } },
    el('p', {}, el('strong', {}, order.order_no), ` · ${t(`order.state.${order.state}`)} · ${t('dash.customs.cop', { cop: customs.cop_no })}`),
    el('p', { class: 'customs-state' }, customsBadge(customs.state)),
    customs.refusal ? el('p', { class: 'reasons' }, el('span', { lang: 'zh-CN' }, customs.refusal.zh), el('br'), el('span', { lang: 'en' }, customs.refusal.en)) : null,
  );
  const rows = customs.receipts.map((r) =>
    el(
      'tr',
      {},
      el('td', {}, fmtReturnTime(r.return_time)),
      el('td', {}, r.kind),
      el('td', { class: 'num' }, String(r.return_status)),
      el('td', {}, r.return_info ?? ''),
      el('td', {}, r.invt_no ?? ''),
      el('td', {}, fmtTime(r.received_at)),
      el('td', {}, r.key_id),
    ),
  );
  const table = el(
    'div',
    { class: 'table-wrap' },
    el(
      'table',
      { class: 'grid' },
      el('caption', {}, t('dash.customs.history')),
      el('thead', {}, el('tr', {}, ...['return_time', 'kind', 'status', 'info', 'invt_no', 'received', 'key'].map((c) => el('th', { scope: 'col' }, t(`dash.rcpt.${c}`))))),
      el('tbody', {}, ...(rows.length ? rows : [el('tr', {}, el('td', { colspan: '7', class: 'muted' }, t('dash.customs.no_receipts')))])),
    ),
  );
  box.replaceChildren(head, table);
}

/** returnTime `YYYYMMDDhhmmssfff`, China Standard Time, as written by customs. */
function fmtReturnTime(s) {
  if (!/^\d{17}$/.test(s)) return s;
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)} ${s.slice(8, 10)}:${s.slice(10, 12)}:${s.slice(12, 14)}`;
}

// ------------------------------------------------------------ gate log

const RESULT_ICON = { open: '✔', refused: '✖', fault: '⚠' };
const RESULT_KIND = { open: 'ok', refused: 'err', fault: 'warn' };

function renderGateLog() {
  $('gatelog-none').hidden = view.decisions.length > 0;
  $('gatelog-rows').replaceChildren(
    ...view.decisions.map((d) =>
      el(
        'tr',
        { dataset: { result: d.result } },
        el('td', {}, fmtTime(d.decided_at)),
        el('td', {}, d.gate),
        el('td', {}, badge(RESULT_KIND[d.result] ?? 'idle', RESULT_ICON[d.result] ?? '…', t(`dash.result.${d.result}`))),
        el('td', { class: 'mono' }, d.code),
        el('td', {}, orderLink(d.order_no)),
        el('td', {}, currentLang() === 'zh' ? d.reason_zh : d.reason_en),
      ),
    ),
  );
}

// ------------------------------------------------------------ devices

function deviceRows() {
  const rows = [];
  for (const g of view.gates) {
    const ok = g.state === 'closed' || g.state === 'open';
    rows.push({
      name: g.id,
      kind: t('dash.kind.gate', { output: g.output }),
      status: g.state === 'fault' ? 'fault' : ok ? 'online' : 'unknown',
      statusText: t(`gate.state.${g.state}`),
      at: g.last_pulse_at,
      detail: g.fault ? t('gate.fault', { fault: g.fault }) : t('gate.counts', { ok: g.pulses_confirmed, faults: g.faults }),
    });
  }
  for (const s of view.stations) {
    if (s.scale) {
      const sc = s.scale;
      rows.push({
        name: t('dash.device.scale', { station: s.id }),
        kind: t('dash.kind.scale', { source: sc.source }),
        status: sc.online ? 'online' : 'offline',
        statusText: sc.online ? t('dash.status.online') : t('dash.status.offline'),
        at: sc.reading_age_ms == null ? null : new Date(Date.now() - sc.reading_age_ms).toISOString(),
        detail: [sc.grams == null ? null : t('dash.scale.reading', { g: fmtNum(sc.grams), stable: t(sc.stable ? 'dash.scale.stable' : 'dash.scale.moving') }), lastError(sc.last_error)].filter(Boolean).join(' · '),
      });
    }
    if (s.printer) {
      const p = s.printer;
      const status = p.online === false || p.paper_out || p.cover_open ? 'offline' : p.online ? 'online' : 'unknown';
      rows.push({
        name: t('dash.device.printer', { station: s.id }),
        kind: t('dash.kind.printer', { target: p.target }),
        status,
        statusText: p.paper_out ? t('dash.printer.paper_out') : p.cover_open ? t('dash.printer.cover_open') : t(`dash.status.${status}`),
        at: p.last_printed_at,
        detail: lastError(p.last_error) ?? '',
      });
    }
  }
  for (const d of view.devices) {
    const h = d.health;
    const bad = h && h.reported && !h.ok;
    rows.push({
      name: d.device,
      // Bridges report their health; one that has not yet is still known by its name.
      kind: h || /bridge/i.test(d.device) ? t('dash.kind.bridge') : t('dash.kind.pda'),
      status: !d.online ? 'offline' : bad ? 'fault' : 'online',
      statusText: !d.online ? t('dash.status.offline') : bad ? t('dash.status.device_fault') : t('dash.status.online'),
      at: d.changed_at,
      detail: h ? [lastError(h.last_error), h.bad_input ? t('dash.health.bad_input', { n: h.bad_input }) : null, h.dropped ? t('dash.health.dropped', { n: h.dropped }) : null].filter(Boolean).join(' · ') : '',
    });
  }
  return rows;
}

/** A device's last error is kept after it recovers: say so, so it is not read as its state now. */
function lastError(e) {
  return e ? t('dash.last_error', { error: e }) : null;
}

const STATUS_ICON = { online: '●', offline: '✖', fault: '⚠', unknown: '?' };
const STATUS_KIND = { online: 'ok', offline: 'err', fault: 'warn', unknown: 'idle' };

function renderDevices() {
  $('device-rows').replaceChildren(
    ...deviceRows().map((r) =>
      el(
        'tr',
        { dataset: { device: r.name, status: r.status } },
        el('th', { scope: 'row' }, r.name),
        el('td', {}, r.kind),
        el('td', {}, badge(STATUS_KIND[r.status], STATUS_ICON[r.status], r.statusText)),
        el('td', {}, r.at ? `${fmtTime(r.at)} (${fmtAge(r.at)})` : '–'),
        el('td', {}, r.detail),
      ),
    ),
  );
}

// ------------------------------------------------------------ stock

function renderStock() {
  const report = view.stock;
  if (!report) return;
  // Counted by the server over every matching lot, not only the rows shown.
  const expired = report.expiry?.expired ?? 0;
  const soon = report.expiry?.expiring ?? 0;
  $('stock-rows').replaceChildren(
    ...report.rows.map((r) => {
      const e = expiryState(r.expiry);
      const expiry = e.kind === 'expired' ? badge('err', '✖', e.text) : e.kind === 'soon' ? badge('warn', '⚠', e.text) : e.text;
      return el(
        'tr',
        { dataset: { sku: r.sku, bin: r.bin, batch: r.batch, expiry: e.kind } },
        el('td', {}, el('span', { class: 'mono' }, r.sku), el('br'), el('span', { class: 'muted' }, r.sku_name)),
        el('td', {}, el('span', { class: 'mono' }, r.bin), ` ${t(`dash.bin.${r.location_kind}`)}`),
        el('td', { class: 'mono' }, r.batch || '–'),
        el('td', {}, expiry),
        el('td', { class: 'num' }, fmtNum(r.available)),
        el('td', { class: 'num' }, fmtNum(r.locked)),
        el('td', { class: 'num' }, fmtNum(r.defective)),
        el('td', { class: 'num' }, fmtNum(r.total)),
      );
    }),
  );
  for (const k of ['available', 'locked', 'defective', 'total']) $(`tot-${k}`).textContent = fmtNum(report.totals[k]);
  $('stock-truncated').hidden = !report.truncated;
  $('stock-expiry').replaceChildren(
    ...[expired ? badge('err', '✖', t('dash.expiry.count_expired', { n: expired })) : null, soon ? badge('warn', '⚠', t('dash.expiry.count_soon', { n: soon, days: EXPIRY_WARN_DAYS })) : null, !expired && !soon ? badge('ok', '✔', t('dash.expiry.all_ok', { days: EXPIRY_WARN_DAYS })) : null].filter(Boolean),
  );
}

/** Rows the stock table shows at most; the filters narrow it down. */
const STOCK_ROWS_SHOWN = 500;

function stockQuery() {
  const q = new URLSearchParams({ limit: String(STOCK_ROWS_SHOWN), expiring_within_days: String(EXPIRY_WARN_DAYS) });
  for (const k of ['sku', 'bin', 'batch']) {
    const v = $(`stock-${k}`).value.trim();
    if (v) q.set(k, v);
  }
  return `/inventory?${q}`;
}

// ------------------------------------------------------------ ledger

function renderLedger() {
  const bad = view.ledger.filter((r) => !r.balanced);
  const integrity = view.integrity;
  const integrityOk = integrity ? integrity.ledger_mismatches.length === 0 && integrity.lock_mismatches.length === 0 : true;
  const summary = $('ledger-summary');
  summary.replaceChildren(
    bad.length ? badge('err', '✖', t('dash.ledger.unbalanced', { n: bad.length })) : badge('ok', '✔', t('dash.ledger.balanced', { n: view.ledger.length })),
    ' ',
    integrityOk ? badge('ok', '✔', t('dash.ledger.integrity_ok')) : badge('err', '✖', t('dash.ledger.integrity_bad')),
  );
  summary.dataset.balanced = String(bad.length === 0);
  $('ledger-at').textContent = view.ledgerAt ? t('dash.ledger.at', { time: fmtTime(view.ledgerAt) }) : '';
  $('ledger-rows').replaceChildren(
    ...view.ledger.map((r) =>
      el(
        'tr',
        { dataset: { sku: r.sku, balanced: String(r.balanced) } },
        el('th', { scope: 'row', class: 'mono' }, r.sku),
        el('td', { class: 'mono' }, r.ledger_item_no ?? '–'),
        el('td', { class: 'num' }, fmtNum(r.received)),
        el('td', { class: 'num' }, fmtNum(r.shipped)),
        el('td', { class: 'num' }, `+${fmtNum(r.adjusted_in)} / −${fmtNum(r.adjusted_out)}`),
        el('td', { class: 'num' }, fmtNum(r.expected_on_hand)),
        el('td', { class: 'num' }, fmtNum(r.on_hand)),
        el('td', { class: 'num' }, fmtNum(r.difference)),
        el('td', {}, r.balanced ? badge('ok', '✔', t('dash.ledger.yes')) : badge('err', '✖', t('dash.ledger.no'))),
      ),
    ),
  );
}

// ------------------------------------------------------------ loading

async function loadSummary() {
  const [summary, exceptions] = await Promise.all([api('GET', '/dashboard'), api('GET', '/exceptions')]);
  view.summary = summary;
  view.exceptions = exceptions;
}

async function loadGates() {
  view.gates = await api('GET', '/gates');
  const lists = await Promise.all(view.gates.map((g) => api('GET', `/gates/${encodeURIComponent(g.id)}/decisions`)));
  view.decisions = lists
    .flat()
    .sort((a, b) => (a.decided_at < b.decided_at ? 1 : -1))
    .slice(0, GATE_LOG_MAX);
}

async function loadDevices() {
  const [devices, stations] = await Promise.all([api('GET', '/devices'), api('GET', '/pack-stations')]);
  view.devices = devices;
  view.stations = stations;
}

async function loadStock() {
  view.stock = await api('GET', stockQuery());
}

async function loadLedger() {
  const [ledger, integrity] = await Promise.all([api('GET', '/inventory/reconciliation'), api('GET', '/inventory/integrity')]);
  view.ledger = ledger;
  view.integrity = integrity;
  view.ledgerAt = new Date().toISOString();
}

async function loadLocations() {
  view.locations = await api('GET', '/locations');
}

function renderAll() {
  $('updated').textContent = view.summary ? t('dash.updated', { time: fmtTime(view.summary.generated_at) }) : '';
  renderPipeline();
  renderExceptions();
  renderThroughput();
  renderCustomsCounts();
  renderCustoms();
  renderGateLog();
  renderDevices();
  renderStock();
  renderLedger();
}

/** What each event may have changed. */
const PARTS = {
  gate_decision: ['summary', 'gates', 'stock'],
  gate_state: ['gates'],
  device: ['devices'],
  scale: ['devices'],
  pack: ['summary', 'stock', 'devices'],
  pick_scan: ['summary', 'stock'],
  changed: ['summary', 'stock', 'gates', 'devices', 'locations'],
  resync: ['summary', 'stock', 'ledger', 'gates', 'devices', 'locations'],
};
const LOADERS = { summary: loadSummary, gates: loadGates, devices: loadDevices, stock: loadStock, ledger: loadLedger, locations: loadLocations };

let pending = new Set();
let timer = null;
let running = false;
let lastRun = 0;

/** Refetches `parts` soon: at most once a second, never two at a time. */
function schedule(parts) {
  for (const p of parts) pending.add(p);
  if (timer || running) return;
  const wait = Math.max(0, lastRun + REFRESH_MIN_MS - Date.now());
  timer = setTimeout(run, wait);
}

async function run() {
  timer = null;
  running = true;
  lastRun = Date.now();
  const parts = [...pending];
  pending = new Set();
  try {
    await Promise.all(parts.map((p) => LOADERS[p]()));
    clearError();
    if (parts.includes('summary') && view.stage) await loadStageOrders();
    if (parts.includes('summary') && view.customsOrder) await showCustoms(view.customsOrder, false);
  } catch (e) {
    showError(e);
  } finally {
    running = false;
    renderAll();
    $('main').dataset.refreshed = String(Number($('main').dataset.refreshed ?? 0) + 1);
    if (pending.size) schedule([]);
  }
}

function refreshAll() {
  schedule(Object.keys(LOADERS));
}

function setLive(on) {
  $('live').dataset.live = on ? 'on' : 'off';
  $('live-text').textContent = t(on ? 'live.on' : 'live.off');
}

const me = await requireRoles(MANAGER_ROLES);
if (me) {
  $('main').hidden = false;
  setLive(false);
  try {
    await Promise.all(Object.values(LOADERS).map((f) => f()));
  } catch (e) {
    showError(e);
  }
  renderAll();
  $('stock-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await loadStock();
      clearError();
    } catch (e) {
      showError(e);
    }
    renderStock();
  });
  $('customs-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const no = $('customs-order').value.trim();
    if (no) showCustoms(no, false);
  });
  document.addEventListener('langchange', () => {
    renderAll();
    setLive($('live').dataset.live === 'on');
  });
  setInterval(() => {
    renderPipeline();
    renderExceptions();
  }, AGE_TICK_MS);
  setInterval(() => schedule(['ledger']), LEDGER_EVERY_MS);
  $('ledger-check').addEventListener('click', () => schedule(['ledger']));
  listen({
    onEvent: (ev) => schedule(PARTS[ev.type] ?? []),
    onLive: setLive,
    onExpired: toLogin,
  });
  $('main').dataset.ready = 'true';
}
