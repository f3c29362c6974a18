// The browser PDA on a 360 × 640 handheld with a keyboard-wedge scanner:
// every scan typed into the page and ended with Enter, no clicks; a wrong
// bin is a red banner and a low double beep; the task ends picked into the
// tote, as the API then confirms.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from './server.mjs';
import { adminToken, addUser, EAN, ok, orderInWave, PASSWORD } from './seed.mjs';
import { assertAccessible, assertNoProblems, assertVisibleFocus, launch, logInVia, newPage, shot, wedgeScan } from './browser.mjs';

let server;
let browser;
let admin;

before(async () => {
  [server, browser] = await Promise.all([startServer(), launch()]);
  admin = await adminToken(server);
  await addUser(server, admin, 'pia', ['picker']);
  await addUser(server, admin, 'gus', ['guard']);
  await orderInWave(server, admin, 'ORD-7', 2);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function scan(page, code) {
  const sound = await wedgeScan(page, code);
  return {
    tone: await page.getAttribute('#banner', 'data-tone'),
    sound,
    step: await page.textContent('#step'),
    target: await page.textContent('#target'),
  };
}

test('a picker walks a task to picked with the scanner alone, and hears a wrong bin', async () => {
  const page = await newPage(browser, { viewport: { width: 360, height: 640 }, hasTouch: true, isMobile: true, locale: 'zh-CN' });
  await logInVia(page, server, 'pia', PASSWORD, '/pda');
  await page.waitForSelector('#main[data-ready]');
  // The browser asked for Chinese, so the page speaks it.
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  assert.equal(await page.textContent('#step'), '扫描任意条码开始。');
  await shot(page, 'pda-1-start');
  await assertAccessible(page, 'PDA, start');

  let s = await scan(page, 'start');
  assert.deepEqual([s.tone, s.sound, s.step], ['ok', 'ok', '扫描空周转箱']);
  s = await scan(page, 'TOTE-5');
  assert.deepEqual([s.tone, s.step, s.target], ['ok', '前往库位并扫描', 'A-01']);
  assert.match(await page.textContent('#task-line'), /ORD-7/);
  assert.equal(await page.textContent('#tote-line'), '周转箱 TOTE-5');
  assert.equal(await page.isVisible('#short'), true);
  await shot(page, 'pda-2-go-to-bin');

  // The wrong bin: red banner with its icon and word, the low double beep.
  s = await scan(page, 'A-02');
  assert.deepEqual([s.tone, s.sound, s.target], ['error', 'error', 'A-01']);
  assert.equal(await page.textContent('#banner-word'), '扫描错误');
  assert.equal(await page.textContent('#banner-icon'), '✖');
  // The server's own words, in the page's language.
  assert.equal(await page.textContent('#detail'), '库位错误 A-02。请去 [A-01]');
  await shot(page, 'pda-3-wrong-bin');
  await assertAccessible(page, 'PDA, wrong bin');

  s = await scan(page, 'A-01');
  assert.deepEqual([s.tone, s.target], ['ok', EAN]);
  s = await scan(page, EAN);
  assert.deepEqual([s.tone, s.target], ['ok', 'B1']);
  s = await scan(page, 'B1');
  assert.deepEqual([s.tone, s.target], ['ok', '2']);
  await shot(page, 'pda-4-quantity');
  s = await scan(page, '2');
  assert.deepEqual([s.tone, s.sound], ['ok', 'ok']);
  assert.match(await page.textContent('#detail'), /^已拣 2 × SKU-1 装入 TOTE-5。/);
  await page.click('#lang-switch');
  assert.match(await page.textContent('#detail'), /^Picked 2 × SKU-1 into TOTE-5\. /);
  await page.click('#lang-switch');
  await page.focus('#scan');
  assert.equal(await page.textContent('#tote-line'), '周转箱 TOTE-5');
  await shot(page, 'pda-5-picked');

  // The books agree: the order is picked into the tote, the goods moved there.
  const order = await ok(server, admin, 'GET', '/orders/ORD-7');
  assert.deepEqual([order.state, order.tote], ['picked', 'TOTE-5']);
  const [task] = await ok(server, admin, 'GET', '/pick-tasks?order_no=ORD-7');
  assert.deepEqual([task.state, task.picker, task.picked_qty], ['picked', 'pia', 2]);

  // Fits the handheld: no sideways scrolling, and every button is thumb-sized.
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'no horizontal scroll at 360 px');
  const small = await page.evaluate(() =>
    [...document.querySelectorAll('button, a, input')]
      .filter((el) => el.offsetParent !== null)
      .map((el) => ({ id: el.id || el.textContent.trim(), h: el.getBoundingClientRect().height, w: el.getBoundingClientRect().width }))
      .filter((r) => r.h < 44 || r.w < 44),
  );
  assert.deepEqual(small, [], 'touch targets under 44 px');
  await assertVisibleFocus(page, '#logout');
  assertNoProblems(page);
  await page.context().close();
});

test('short-pick reasons are big buttons and the focus returns to the scan box', async () => {
  await ok(server, admin, 'POST', '/orders', {
    order_no: 'ORD-8', trade_mode: '1210', ebp_code: '3301964J31', ebc_code: '3301964J31', cop_no: 'COP-ORD-8',
    buyer: { name: '张三', id_number: '11010519491231002X', phone: '13812345678' },
    consignee: { name: '张三', phone: '13912345678', address: '浙江省杭州市西湖区文三路 1 号' },
    lines: [{ sku: 'SKU-1', qty: 1, unit_price: '50.00' }],
    goods_value: '50.00', freight: '10.00', discount: '0', tax: '4.55', actual_paid: '64.55',
  }, 201);
  await ok(server, admin, 'POST', '/waves', { wave_no: 'W-ORD-8', order_nos: ['ORD-8'] }, 201);
  const page = await newPage(browser, { viewport: { width: 360, height: 640 }, hasTouch: true, isMobile: true });
  await logInVia(page, server, 'pia', PASSWORD, '/pda');
  await page.waitForSelector('#main[data-ready]');
  const sent = [];
  page.on('request', (r) => r.url().endsWith('/pick-tasks/scan') && sent.push(r.postData()));
  page.on('console', (m) => sent.push(`console ${m.type()}: ${m.text()}`));
  // A scanner does not wait for answers: three codes in a burst, none lost.
  for (const code of ['start', 'TOTE-6', 'A-01']) {
    await page.keyboard.type(code);
    await page.keyboard.press('Enter');
  }
  await page
    .waitForFunction((ean) => document.querySelector('#target').textContent === ean, EAN, { timeout: 10_000 })
    .catch(async (e) => {
      await shot(page, 'pda-burst-failed');
      throw new Error(`${e.message}: ${await page.textContent('#detail')} ${JSON.stringify(await page.evaluate(() => window.bondgateSounds))} ${JSON.stringify(sent)} ${page.url()}`);
    });
  assert.deepEqual(await page.evaluate(() => window.bondgateSounds), ['ok', 'ok', 'ok']);
  // The bin holds none of it: short, then the reason from a big button.
  await page.tap('#short');
  await page.waitForSelector('#reasons:not([hidden])');
  assert.equal(await page.getAttribute('#banner', 'data-tone'), 'warning');
  await shot(page, 'pda-6-short-reasons');
  await assertAccessible(page, 'PDA, short-pick reasons');
  const sizes = await page.$$eval('#reasons button', (bs) => bs.map((b) => b.getBoundingClientRect().height));
  assert.ok(sizes.every((h) => h >= 48), `reason buttons ${sizes}`);
  await page.tap('button[data-code="#DAMAGED"]');
  await page.waitForSelector('#reasons[hidden]', { state: 'attached' });
  await page.waitForFunction(() => document.activeElement.id === 'scan');
  const tasks = await ok(server, admin, 'GET', '/pick-tasks?order_no=ORD-8');
  assert.ok(tasks.some((x) => x.short_reason === 'damaged' && x.picker === 'pia'), JSON.stringify(tasks));
  assertNoProblems(page);
  await page.context().close();
});

test('a guard is refused the PDA page', async () => {
  const page = await newPage(browser, { viewport: { width: 360, height: 640 } });
  await logInVia(page, server, 'gus', PASSWORD, '/pda');
  await page.waitForSelector('#denied:not([hidden])');
  assert.match(await page.textContent('#denied-text'), /picker.*gus.*gate guard/);
  assert.equal(await page.isHidden('#main'), true);
  await shot(page, 'pda-7-guard-denied');
  assertNoProblems(page);
  await page.context().close();
});
