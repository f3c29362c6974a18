// The gate guard's screen: the last decision big, with its reason in
// Chinese and English; the gate's state; the recent decisions; a scan box
// for the keyboard-wedge scanner. Updated live from the event feed.
import { api } from './api.js';
import { listen } from './events.js';
import { currentLang, t } from './i18n.js';
import { errorText, requireRoles, toLogin } from './session.js';

const GUARD_ROLES = ['guard', 'manager', 'admin'];
const GATE_KEY = 'bondgate.gate';
const RECENT_MAX = 20;
const RESULT_ICON = { open: '✔', refused: '✖', fault: '⚠', pending: '…', none: '…' };
const STATE_ICON = { closed: '●', open: '▲', fault: '⚠', unknown: '?' };

const $ = (id) => document.getElementById(id);
let gates = [];
let gate = null;
let recent = [];
let last = null;

function fmtTime(iso) {
  if (!iso) return '–';
  return new Date(iso).toLocaleString(currentLang() === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}

function resultKind(d) {
  return d && RESULT_ICON[d.result] ? d.result : 'none';
}

function renderResult() {
  const kind = resultKind(last);
  const box = $('result');
  box.className = `result result-${kind}`;
  box.dataset.result = kind;
  $('result-icon').textContent = RESULT_ICON[kind];
  $('result-word').textContent = t(`gate.result.${kind}`);
  $('reason-zh').textContent = last ? last.reason_zh : '';
  $('reason-en').textContent = last ? last.reason_en : '';
  // The guard's language first.
  const reasons = $('result-reasons');
  if (currentLang() === 'en') reasons.append($('reason-zh'));
  else reasons.append($('reason-en'));
  $('result-parcel').textContent = last?.package_no || '–';
  $('result-order').textContent = last?.order_no || '–';
  $('result-code').textContent = last?.code || '–';
  $('result-time').textContent = fmtTime(last?.decided_at);
}

function lateOpen(d) {
  return (d.output_detail || '').includes('LATE OPEN');
}

function renderRecent() {
  $('recent-none').hidden = recent.length > 0;
  $('recent').replaceChildren(
    ...recent.map((d) => {
      const li = document.createElement('li');
      const kind = resultKind(d);
      li.className = `recent-item recent-${kind}`;
      const head = document.createElement('span');
      head.className = 'recent-head';
      head.textContent = `${RESULT_ICON[kind]} ${t(`gate.result.${kind}`)}`;
      const what = document.createElement('span');
      what.className = 'recent-what';
      what.textContent = `${d.code}${d.order_no ? ` · ${d.order_no}` : ''} · ${fmtTime(d.decided_at)}`;
      const why = document.createElement('span');
      why.className = 'recent-why';
      why.textContent = currentLang() === 'zh' ? d.reason_zh : d.reason_en;
      li.append(head, what, why);
      if (lateOpen(d)) {
        const late = document.createElement('strong');
        late.className = 'late';
        late.textContent = t('gate.late');
        li.append(late);
      }
      return li;
    }),
  );
  $('gate-late').hidden = !recent.some(lateOpen);
  $('gate-late').textContent = t('gate.late');
}

function renderState() {
  const g = gates.find((x) => x.id === gate);
  if (!g) return;
  const state = STATE_ICON[g.state] ? g.state : 'unknown';
  $('gate-state').className = `state state-${state}`;
  $('gate-state').dataset.state = state;
  $('state-icon').textContent = STATE_ICON[state];
  $('state-word').textContent = t(`gate.state.${state}`);
  $('gate-output').textContent = t('gate.output', { kind: g.output });
  $('gate-fault').hidden = !g.fault;
  $('gate-fault').textContent = g.fault ? t('gate.fault', { fault: g.fault }) : '';
  $('gate-counts').textContent = t('gate.counts', { ok: g.pulses_confirmed, faults: g.faults });
}

let reloading = false;
let reloadAgain = false;

/** Refetches the gates' status (counts, fault, read-back); one request at a time, and once more if asked meanwhile. */
function reloadState() {
  if (reloading) {
    reloadAgain = true;
    return;
  }
  reloading = true;
  api('GET', '/gates')
    .then((list) => {
      gates = list;
      renderState();
    })
    .catch(() => {})
    .finally(() => {
      reloading = false;
      if (reloadAgain) {
        reloadAgain = false;
        reloadState();
      }
    });
}

function renderAll() {
  renderResult();
  renderRecent();
  renderState();
}

async function loadGates() {
  gates = await api('GET', '/gates');
  const select = $('gate-select');
  select.replaceChildren(
    ...gates.map((g) => {
      const o = document.createElement('option');
      o.value = g.id;
      o.textContent = g.id;
      return o;
    }),
  );
  $('no-gates').hidden = gates.length > 0;
  $('scan-form').hidden = gates.length === 0;
  const saved = localStorage.getItem(GATE_KEY);
  gate = gates.some((g) => g.id === gate) ? gate : gates.some((g) => g.id === saved) ? saved : gates[0]?.id ?? null;
  select.value = gate ?? '';
}

async function loadDecisions() {
  if (!gate) return;
  const list = await api('GET', `/gates/${encodeURIComponent(gate)}/decisions`);
  recent = list.slice(0, RECENT_MAX);
  last = recent[0] ?? null;
}

async function refresh() {
  try {
    await loadGates();
    await loadDecisions();
    $('scan-error').hidden = true;
  } catch (e) {
    showError(errorText(e));
  }
  renderAll();
}

function showError(message) {
  $('scan-error').textContent = message;
  $('scan-error').hidden = false;
}

function onDecision(d) {
  if (d.gate !== gate) return;
  recent = [d, ...recent.filter((x) => x.id !== d.id)].slice(0, RECENT_MAX);
  if (!last || d.id >= last.id) last = d;
  renderResult();
  renderRecent();
}

function onEvent(e) {
  if (e.type === 'gate_decision') onDecision(e);
  else if (e.type === 'gate_state') {
    const g = gates.find((x) => x.id === e.gate);
    if (g) {
      g.state = e.state;
      if (e.fault) g.fault = e.fault;
      else if (e.state !== 'fault' && e.source === 'pulse') g.fault = null;
      renderState();
      // The counts and the read-back live on the server: fetch them.
      reloadState();
    }
  } else if (e.type === 'resync') refresh();
}

function setLive(on) {
  $('live').dataset.live = on ? 'on' : 'off';
  $('live-text').textContent = t(on ? 'live.on' : 'live.off');
}

const me = await requireRoles(GUARD_ROLES);
if (me) {
  $('main').hidden = false;
  setLive(false);
  await refresh();
  $('gate-select').addEventListener('change', async (ev) => {
    gate = ev.target.value;
    localStorage.setItem(GATE_KEY, gate);
    await refresh();
    $('scan').focus();
  });
  const input = $('scan');
  $('scan-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const code = input.value.trim();
    input.value = '';
    $('scan-error').hidden = true;
    if (!code) {
      showError(t('gate.scan.empty'));
      input.focus();
      return;
    }
    if (!gate) return;
    $('result').setAttribute('aria-busy', 'true');
    try {
      const d = await api('POST', `/gates/${encodeURIComponent(gate)}/scans`, { code });
      onDecision(d);
    } catch (e) {
      if (e.status === 401) toLogin();
      showError(errorText(e));
    } finally {
      $('result').removeAttribute('aria-busy');
      input.focus();
    }
  });
  document.addEventListener('langchange', () => {
    renderAll();
    setLive($('live').dataset.live === 'on');
  });
  // The gate's scanner types into whatever has the focus: bring it back to
  // the scan box whenever it falls to the page itself.
  input.addEventListener('blur', () => {
    setTimeout(() => {
      if (!document.activeElement || document.activeElement === document.body) input.focus();
    }, 150);
  });
  listen({ onEvent, onLive: setLive, onExpired: toLogin });
  input.focus();
  // Tests (and support) can tell when the page has loaded and listens.
  $('main').dataset.ready = 'true';
}
