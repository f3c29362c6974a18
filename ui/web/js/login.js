import { api, setToken } from './api.js';
import { mountHeader, errorText } from './session.js';
import { t } from './i18n.js';

/** Where to go after logging in: a path on this server only. */
function nextPath() {
  const next = new URLSearchParams(location.search).get('next');
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

mountHeader(null);
const form = document.getElementById('login-form');
const error = document.getElementById('login-error');
const submit = document.getElementById('login-submit');
document.getElementById('username').focus();

function fail(message) {
  error.textContent = message;
  error.hidden = false;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    fail(t('login.missing'));
    return;
  }
  submit.disabled = true;
  submit.textContent = t('login.busy');
  try {
    const res = await api('POST', '/auth/login', { username, password });
    setToken(res.token);
    location.replace(nextPath());
  } catch (e) {
    fail(e.status === 401 ? t('login.failed') : errorText(e));
    form.password.value = '';
    form.password.focus();
  } finally {
    submit.disabled = false;
    submit.textContent = t('login.submit');
  }
});
