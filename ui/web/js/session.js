// Who is logged in, and whether this page is for them. The API checks the
// roles again on every call; this only spares a person a page they cannot use.
import { api, token, setToken } from './api.js';
import { applyI18n, mountLangSwitch, t } from './i18n.js';

/** Sends the browser to the login page, to come back to this page after. */
export function toLogin() {
  const next = location.pathname;
  location.replace(`/login?next=${encodeURIComponent(next)}`);
}

export async function logout() {
  try {
    if (token()) await api('POST', '/auth/logout');
  } catch (e) {
    // Logged out locally either way.
  }
  setToken(null);
  location.replace('/login');
}

/** Fills the header: user, language switch, logout. */
export function mountHeader(me) {
  applyI18n();
  const sw = document.getElementById('lang-switch');
  if (sw) mountLangSwitch(sw);
  const out = document.getElementById('logout');
  if (out) {
    out.hidden = !me;
    out.addEventListener('click', logout);
  }
  const user = document.getElementById('user');
  if (user && me) {
    const show = () => {
      user.textContent = t('nav.user', { user: me.username });
    };
    show();
    document.addEventListener('langchange', show);
  }
}

function roleList(roles) {
  return roles.map((r) => t(`role.${r}`)).join(t('list.sep'));
}

/**
 * The logged-in user if they hold one of `roles`. Without a session the
 * browser goes to the login page; with the wrong roles the page shows why
 * and offers logout, and this resolves to null.
 */
export async function requireRoles(roles) {
  if (!token()) {
    toLogin();
    return null;
  }
  let me;
  try {
    me = await api('GET', '/auth/me');
  } catch (e) {
    if (e.status === 401) {
      setToken(null);
      toLogin();
      return null;
    }
    mountHeader(null);
    showFatal(e.status === 0 ? t('error.network') : t('error.server', { detail: e.detail || e.code }));
    return null;
  }
  mountHeader(me);
  if (roles && !me.roles.some((r) => roles.includes(r))) {
    const denied = document.getElementById('denied');
    const main = document.getElementById('main');
    if (main) main.hidden = true;
    const text = document.getElementById('denied-text');
    const fill = () => {
      text.textContent = t('denied.text', { need: roleList(roles), user: me.username, have: roleList(me.roles) });
    };
    fill();
    document.addEventListener('langchange', fill);
    document.getElementById('denied-logout').addEventListener('click', logout);
    denied.hidden = false;
    document.getElementById('denied-logout').focus();
    return null;
  }
  return me;
}

export function showFatal(message) {
  const el = document.getElementById('fatal');
  if (el) {
    el.textContent = message;
    el.hidden = false;
  }
}

/** A readable message for a failed call. */
export function errorText(e) {
  if (e.status === 0) return t('error.network');
  if (e.status === 401) return t('error.session');
  return t('error.server', { detail: e.detail || e.code });
}
