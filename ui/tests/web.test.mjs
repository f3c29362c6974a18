// How the server serves the screens: pages and assets with their types,
// revalidated caching, a strict Content-Security-Policy; the API untouched;
// the login page's refusals; the token only in sessionStorage.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, ADMIN_PASSWORD } from './server.mjs';
import { assertAccessible, assertNoProblems, assertVisibleFocus, launch, logInVia, newPage, shot } from './browser.mjs';

let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([startServer(), launch()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('pages and assets are served with types, revalidation and a strict CSP', async () => {
  for (const [path, type] of [
    ['/', 'text/html; charset=utf-8'],
    ['/login', 'text/html; charset=utf-8'],
    ['/gate', 'text/html; charset=utf-8'],
    ['/pda', 'text/html; charset=utf-8'],
    ['/pack', 'text/html; charset=utf-8'],
    ['/dashboard', 'text/html; charset=utf-8'],
    ['/ui/js/dashboard.js', 'text/javascript; charset=utf-8'],
    ['/ui/css/dashboard.css', 'text/css; charset=utf-8'],
    ['/ui/js/pack.js', 'text/javascript; charset=utf-8'],
    ['/ui/js/gate.js', 'text/javascript; charset=utf-8'],
    ['/ui/css/app.css', 'text/css; charset=utf-8'],
    ['/ui/i18n/zh.js', 'text/javascript; charset=utf-8'],
  ]) {
    const res = await fetch(`${server.url}${path}`);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), type, path);
    assert.equal(res.headers.get('cache-control'), 'no-cache', path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self'(;|$)/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/, path);
    const etag = res.headers.get('etag');
    const again = await fetch(`${server.url}${path}`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304, path);
    const body = await res.text();
    if (type.startsWith('text/html')) {
      assert.doesNotMatch(body, /<script(?![^>]*\bsrc=)[^>]*>/, `${path} has an inline script`);
      assert.doesNotMatch(body, /\sstyle=|\son[a-z]+=|https?:\/\//, `${path} has inline style, handlers or outside links`);
    }
  }
  for (const path of ['/ui/nope.js', '/ui/../Cargo.toml', '/ui/%2e%2e/Cargo.toml', '/pack/', '/packing']) {
    assert.equal((await fetch(`${server.url}${path}`)).status, 404, path);
  }
  const api = await fetch(`${server.url}/api/v1/nope`);
  assert.equal(api.status, 404);
  assert.match(api.headers.get('content-type'), /problem\+json/);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
});

test('login refuses bad input clearly and keeps the token out of URLs', async () => {
  const page = await newPage(browser);
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`${server.url}/gate`);
  // No session: to the login page, to come back after.
  await page.waitForURL(`${server.url}/login?next=%2Fgate`);
  await assertAccessible(page, 'login page');
  await assertVisibleFocus(page, '#login-submit');
  await page.click('#login-submit');
  assert.equal(await page.textContent('#login-error'), 'Enter your user name and password.');
  await page.fill('#username', 'admin');
  await page.fill('#password', 'wrong-password');
  await page.press('#password', 'Enter');
  await page.waitForSelector('#login-error:not([hidden])');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent === 'Wrong user name or password.');
  await shot(page, 'login-1-refused');
  await page.fill('#password', ADMIN_PASSWORD);
  await page.press('#password', 'Enter');
  await page.waitForURL(`${server.url}/gate`);
  const token = await page.evaluate(() => sessionStorage.getItem('bondgate.token'));
  assert.ok(token && token.length > 20);
  assert.equal(await page.evaluate(() => Object.keys(localStorage).some((k) => localStorage.getItem(k).includes(sessionStorage.getItem('bondgate.token')))), false);
  assert.deepEqual(requests.filter((u) => u.includes(token)), []);
  // The admin's home lists every screen; the language follows the switch.
  await page.goto(`${server.url}/`);
  await page.waitForSelector('#screens li');
  assert.deepEqual(await page.$$eval('#screens a', (as) => as.map((a) => a.getAttribute('href'))), ['/dashboard', '/gate', '/pda', '/pack']);
  await page.click('#lang-switch');
  assert.equal(await page.textContent('#screens a strong'), '主管看板');
  await shot(page, 'home-zh');
  await assertAccessible(page, 'home, 中文');
  assertNoProblems(page);
  await page.context().close();
});
