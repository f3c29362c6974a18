// The pack station in headless Chromium against the real server, as a
// packer with the station's keyboard-wedge scanner: station P1 chosen, a
// tote scanned, its items ticked off one scan at a time, the scale's
// readings (published over MQTT as its bridge would) seen live, moving then
// stable, the box label scanned: packed, label queued, then printed. A
// second parcel weighs too much: a plain message says what to do, in
// English and in Chinese; weighed again it packs, and its label is
// reprinted with a reason.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from './server.mjs';
import { adminToken, addUser, boxS, call, EAN, login, ok, orderAndWave, orderInWave, PASSWORD, pickAll, printerBridge, scaleBridge } from './seed.mjs';
import { assertAccessible, assertNoProblems, assertVisibleFocus, launch, logInVia, newPage, shot, wedgeScan } from './browser.mjs';

let server;
let browser;
let admin;

before(async () => {
  [server, browser] = await Promise.all([startServer(), launch()]);
  admin = await adminToken(server);
  await addUser(server, admin, 'pat', ['packer']);
  await addUser(server, admin, 'pia', ['picker']);
  await addUser(server, admin, 'gus', ['guard']);
  await boxS(server, admin);
  // ORD-1: two units (2 × 95 g + a 120 g box = 310 g); ORD-2: one (215 g).
  await orderInWave(server, admin, 'ORD-1', 2);
  await pickAll(server, await login(server, 'pia'), 'TOTE-1', 2);
  await orderAndWave(server, admin, 'ORD-2', 1);
  await pickAll(server, await login(server, 'pia'), 'TOTE-2', 1);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Types `code` into the focused scan box as the wedge scanner does, and waits for the answer's tone. */
async function scan(page, code) {
  const sound = await wedgeScan(page, code);
  return {
    tone: await page.getAttribute('#banner', 'data-tone'),
    sound,
    icon: await page.textContent('#banner-icon'),
    word: await page.textContent('#banner-word'),
    step: await page.textContent('#step'),
    target: await page.textContent('#target'),
  };
}

/** The checklist as shown: [sku, count text, ticked]. */
async function checklist(page) {
  return page.$$eval('#checklist li', (lis) => lis.map((li) => [li.dataset.sku, li.querySelector('.check-count').textContent, li.dataset.done === 'true']));
}

async function scaleShows(page, grams, state) {
  await page.waitForFunction(
    ([g, s]) => document.querySelector('#scale').dataset.state === s && document.querySelector('#scale-grams').textContent === g,
    [grams, state],
    { timeout: 10_000 },
  );
}

test('a packer packs a tote with the scanner alone, watching the scale and the label', async () => {
  const printer = await printerBridge(server);
  printer.hold();
  const page = await newPage(browser, { viewport: { width: 1024, height: 768 } });
  await logInVia(page, server, 'pat', PASSWORD, '/pack');
  await page.waitForSelector('#main[data-ready]');
  await page.waitForSelector('#live[data-live="on"]');
  assert.equal(await page.inputValue('#station-select'), 'P1');
  assert.equal(await page.evaluate(() => localStorage.getItem('bondgate.pack.station')), null);
  // No bridge has sent a reading yet: the scale is offline, said in words.
  assert.equal(await page.getAttribute('#scale', 'data-state'), 'offline');
  assert.match(await page.textContent('#scale-word'), /Offline/);
  assert.equal(await page.textContent('#step'), 'Scan a tote or an order number');
  // At 1024 × 768 the answer, the step and the scan box are on screen at once, nothing scrolls sideways.
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 1024), 'no horizontal scroll at 1024 px');
  assert.ok(await page.evaluate(() => document.querySelector('#scan').getBoundingClientRect().bottom <= 768), 'scan box above the fold');
  await shot(page, 'pack-1-start');
  await assertAccessible(page, 'pack station, start');

  // The scale's bridge starts sending: the page shows it live.
  const scale = await scaleBridge(server);
  try {
    await scaleShows(page, '0 g', 'stable');

    let s = await scan(page, 'TOTE-1');
    assert.deepEqual([s.tone, s.sound, s.icon, s.word], ['ok', 'ok', '✔', 'OK']);
    assert.deepEqual([s.step, s.target], ['Scan the next item into the box', EAN]);
    assert.deepEqual(await checklist(page), [['SKU-1', '0 of 2', false]]);
    assert.match(await page.textContent('#checklist li'), /Face serum 30 ml/);
    assert.equal(await page.textContent('#order-line'), 'Order ORD-1 · tote TOTE-1');
    await page.waitForFunction(() => document.querySelector('#weight-expected').textContent === '190 g of goods + the box');
    assert.equal(await page.textContent('#weight-boxes'), 'In the box: BOX-S 310 g');

    s = await scan(page, EAN);
    assert.deepEqual([s.tone, s.target], ['ok', EAN]);
    assert.deepEqual(await checklist(page), [['SKU-1', '1 of 2', false]]);

    // Something that is not in the order: red, ✖, words, the low double beep; nothing counted.
    s = await scan(page, '4006381333931');
    assert.deepEqual([s.tone, s.sound, s.icon, s.word], ['error', 'error', '✖', 'Not accepted']);
    assert.deepEqual(await checklist(page), [['SKU-1', '1 of 2', false]]);
    assert.equal(await page.textContent('#step'), 'Scan the next item into the box');
    await shot(page, 'pack-2-wrong-item');
    await assertAccessible(page, 'pack station, wrong item');

    s = await scan(page, EAN);
    assert.deepEqual([s.tone, s.step, s.target], ['ok', 'Put the parcel on the scale and scan the box label', 'BOX-S']);
    assert.deepEqual(await checklist(page), [['SKU-1', '2 of 2', true]]);
    assert.equal(await page.textContent('#checklist .check-state'), 'complete');
    assert.equal(await page.textContent('#checklist .icon'), '✔');

    // The parcel goes on the plate: moving first, then still.
    scale.set(150, false);
    await scaleShows(page, '150 g', 'moving');
    assert.equal(await page.textContent('#scale-word'), 'Moving: wait');
    assert.equal(await page.textContent('#scale-icon'), '〜');
    await shot(page, 'pack-3-scale-moving');
    scale.set(312, true);
    await scaleShows(page, '312 g', 'stable');
    assert.equal(await page.textContent('#scale-icon'), '✔');
    await shot(page, 'pack-4-scale-stable');

    s = await scan(page, 'BOX-S');
    assert.deepEqual([s.tone, s.sound, s.icon, s.word], ['ok', 'ok', '✔', 'Packed: order ORD-1']);
    assert.equal(s.step, 'Scan a tote or an order number');
    const parcel = await ok(server, admin, 'GET', '/packages/PKG-ORD-1');
    assert.equal(parcel.state, 'packed');
    assert.equal(await page.textContent('#parcel-no'), parcel.package_no);
    assert.equal(await page.textContent('#parcel-waybill'), parcel.waybill_no);
    assert.ok(parcel.waybill_no);
    assert.equal(await page.textContent('#weight-expected'), '310 g ± 30 g');
    assert.equal(await page.textContent('#weight-actual'), '312 g');
    assert.equal(await page.isHidden('#weight-boxes'), true);
    assert.equal(await page.textContent('#weight-word'), 'Within tolerance (2 g off)');
    assert.equal(await page.isHidden('#mismatch'), true);
    // The finished checklist stays until the next tote.
    assert.deepEqual(await checklist(page), [['SKU-1', '2 of 2', true]]);
    // The printer bridge holds the job: queued, said so; then it prints.
    await page.waitForSelector('#label-state[data-state="queued"]');
    assert.equal(await page.textContent('#label-word'), 'Label queued for printing (copy 1)');
    await page.waitForFunction(() => document.querySelector('#printer-line').textContent === 'Printer: ready');
    await shot(page, 'pack-5-packed-label-queued');
    await assertAccessible(page, 'pack station, packed');
    for (let i = 0; printer.jobs.length === 0; i += 1) {
      assert.ok(i < 100, 'the label job never reached the printer bridge');
      await new Promise((r) => setTimeout(r, 100));
    }
    printer.release();
    await page.waitForSelector('#label-state[data-state="printed"]', { timeout: 20_000 });
    assert.equal(await page.textContent('#label-word'), 'Label printed (copy 1)');
    assert.equal(await page.textContent('#label-icon'), '✔');
    await shot(page, 'pack-6-label-printed');

    // The parcel comes off the plate; the next tote.
    scale.set(0, false);
    scale.set(0, true);
    await scaleShows(page, '0 g', 'stable');
    s = await scan(page, 'TOTE-2');
    assert.deepEqual([s.tone, s.target], ['ok', EAN]);
    assert.deepEqual(await checklist(page), [['SKU-1', '0 of 1', false]]);
    // The last parcel's label stays in view; the weights are the new order's.
    assert.equal(await page.textContent('#parcel-no'), 'PKG-ORD-1');
    await page.waitForFunction(() => document.querySelector('#weight-expected').textContent === '95 g of goods + the box');
    // Another screen at P1, whose clock runs far ahead, starts ORD-2 over;
    // this page is reloaded: it picks up where the station stands and its
    // own scan numbers go on from the other screen's.
    const pat = await login(server, 'pat');
    const ahead = Date.now() + 86_400_000;
    await ok(server, pat, 'POST', '/pack-stations/P1/scans', { seq: ahead, code: '#CANCEL' });
    await ok(server, pat, 'POST', '/pack-stations/P1/scans', { seq: ahead + 1, code: 'TOTE-2' });
    await page.reload();
    await page.waitForSelector('#main[data-ready]');
    assert.equal(await page.textContent('#banner-word'), 'Parcel in progress: order ORD-2');
    assert.equal(await page.getAttribute('#banner', 'data-tone'), 'idle');
    assert.deepEqual([await page.textContent('#step'), await page.textContent('#target')], ['Scan the next item into the box', EAN]);
    assert.deepEqual(await checklist(page), [['SKU-1', '0 of 1', false]]);
    assert.equal(await page.isVisible('#cancel'), true);
    await scaleShows(page, '0 g', 'stable');
    s = await scan(page, EAN);
    assert.deepEqual([s.tone, s.target], ['ok', 'BOX-S']);
    // Far too heavy on the scale: refused, with what to do in plain words.
    scale.set(260, false);
    await scaleShows(page, '260 g', 'moving');
    scale.set(400, true);
    await scaleShows(page, '400 g', 'stable');
    s = await scan(page, 'BOX-S');
    assert.deepEqual([s.tone, s.sound, s.icon, s.word], ['error', 'error', '✖', 'Weight does not match']);
    assert.equal(s.step, 'Put the parcel on the scale and scan the box label');
    assert.equal(await page.textContent('#parcel-no'), 'PKG-ORD-2');
    assert.equal(await page.textContent('#weight-expected'), '215 g ± 30 g');
    assert.equal(await page.textContent('#weight-actual'), '400 g');
    assert.equal(await page.textContent('#weight-word'), 'Too heavy by 185 g');
    const message = await page.textContent('#mismatch');
    assert.equal(
      message,
      'The parcel is too heavy: it weighs 400 g, it should weigh 215 g (± 30 g), 185 g more. Check for an extra or wrong item and that the box is the right one. Then put the parcel back on the scale and scan the box label to weigh it again. If it is still too heavy, call a manager.',
    );
    assert.doesNotMatch(message, /weight_mismatch|[A-Z_]{6,}/);
    assert.equal(await page.textContent('#label-word'), 'No label: the weight did not match');
    assert.equal(await page.isHidden('#reprint-form'), true);
    // The checklist is still the order's, complete.
    assert.deepEqual(await checklist(page), [['SKU-1', '1 of 1', true]]);
    const [station] = await ok(server, admin, 'GET', '/pack-stations');
    assert.ok(station.last_answer.seq > ahead + 1, `the page's scan numbers went on from the other screen's: ${station.last_answer.seq}`);
    await page.waitForFunction(() => document.querySelector('#exceptions li')?.textContent.startsWith('PKG-ORD-2'));
    const [exception] = await ok(server, admin, 'GET', '/pack-exceptions');
    assert.deepEqual([exception.package_no, exception.gross_grams], ['PKG-ORD-2', 400]);
    await shot(page, 'pack-7-mismatch');
    await assertAccessible(page, 'pack station, mismatch');

    // 中文: the same message in Chinese.
    await page.click('#lang-switch');
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal(
      await page.textContent('#mismatch'),
      '包裹过重：实称 400 克，应为 215 克（允许 ± 30 克），多了 185 克。请检查是否多放或放错了商品、箱子是否用对。然后把包裹放回秤上，扫描箱子标签重新称重。仍然过重请联系主管。',
    );
    assert.equal(await page.textContent('#banner-word'), '重量不符');
    assert.equal(await page.textContent('#scale-word'), '稳定');
    // The server's own words too.
    assert.equal(
      await page.textContent('#detail'),
      '包裹实称 400 克，应为 215 克：比允许范围 ±30 克重了 185 克（是否多放了商品或用错了箱子？）。请检查包裹，然后扫描 [BOX] 箱子标签重新称重，或联系主管',
    );
    await shot(page, 'pack-8-mismatch-zh');
    await assertAccessible(page, 'pack station, mismatch, 中文');
    await page.click('#lang-switch');
    await page.focus('#scan');

    // The extra item is taken out; weighed again, it packs.
    scale.set(300, false);
    await scaleShows(page, '300 g', 'moving');
    scale.set(216, true);
    await scaleShows(page, '216 g', 'stable');
    s = await scan(page, 'BOX-S');
    assert.deepEqual([s.tone, s.word], ['ok', 'Packed: order ORD-2']);
    assert.equal(await page.isHidden('#mismatch'), true);
    assert.equal(await page.textContent('#weight-actual'), '216 g');
    await page.waitForSelector('#label-state[data-state="printed"]', { timeout: 20_000 });

    // A reprint, with its reason chosen from the list.
    await page.selectOption('#reprint-reason', 'smudged');
    await page.click('#reprint');
    await page.waitForFunction(() => document.querySelector('#reprint-message').textContent === 'Copy 2 queued for printing.');
    await page.waitForFunction(() => document.querySelector('#label-word').textContent === 'Label printed (copy 2)', null, { timeout: 20_000 });
    await page.waitForFunction(() => document.activeElement.id === 'scan');
    const jobs = await ok(server, admin, 'GET', '/print-jobs?station=P1');
    const reprint = jobs.find((j) => j.package_no === 'PKG-ORD-2' && j.copy === 2);
    assert.deepEqual([reprint.state, reprint.reason, reprint.requested_by], ['printed', 'Label smudged or unreadable', 'pat']);
    await shot(page, 'pack-9-reprinted');
    await assertAccessible(page, 'pack station, reprinted');

    // Big targets, and focus always drawn.
    const small = await page.evaluate(() =>
      [...document.querySelectorAll('button, a, input, select')]
        .filter((el) => el.offsetParent !== null)
        .map((el) => ({ id: el.id || el.textContent.trim(), h: el.getBoundingClientRect().height, w: el.getBoundingClientRect().width }))
        .filter((r) => r.h < 44 || r.w < 44),
    );
    assert.deepEqual(small, [], 'targets under 44 px');
    const scanHeight = await page.evaluate(() => document.querySelector('#scan').getBoundingClientRect().height);
    assert.ok(scanHeight >= 48, `scan box ${scanHeight} px`);
    await assertVisibleFocus(page, '#reprint');
    await assertVisibleFocus(page, '#station-select');
    // The station stays chosen for the next visit.
    await page.selectOption('#station-select', 'P1');
    assert.equal(await page.evaluate(() => localStorage.getItem('bondgate.pack.station')), 'P1');

    // The bridge stops: the page says the scale is offline, without a reload.
    await scale.close();
    await page.waitForSelector('#scale[data-state="offline"]', { timeout: 10_000 });
    assert.match(await page.textContent('#scale-word'), /Offline/);
  } finally {
    await scale.close();
    printer.close();
  }
  assertNoProblems(page);
  await page.context().close();
});

test('on a 360-wide screen the station fits, one column, thumb-sized', async () => {
  const page = await newPage(browser, { viewport: { width: 360, height: 640 }, hasTouch: true, isMobile: true, locale: 'zh-CN' });
  await logInVia(page, server, 'pat', PASSWORD, '/pack');
  await page.waitForSelector('#main[data-ready]');
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  assert.equal(await page.textContent('#step'), '扫描周转箱或订单号');
  // An order already packed is refused, and its parcel shown with its label.
  const s = await scan(page, 'ORD-1');
  assert.deepEqual([s.tone, s.icon, s.word], ['error', '✖', '已经打包过：订单 ORD-1']);
  assert.equal(await page.textContent('#parcel-no'), 'PKG-ORD-1');
  assert.equal(await page.isVisible('#reprint'), true);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'no horizontal scroll at 360 px');
  const small = await page.evaluate(() =>
    [...document.querySelectorAll('button, a, input, select')]
      .filter((el) => el.offsetParent !== null)
      .map((el) => ({ id: el.id || el.textContent.trim(), h: el.getBoundingClientRect().height, w: el.getBoundingClientRect().width }))
      .filter((r) => r.h < 44 || r.w < 44),
  );
  assert.deepEqual(small, [], 'touch targets under 44 px');
  await shot(page, 'pack-10-narrow-zh');
  await assertAccessible(page, 'pack station, 360 px, 中文');
  await assertVisibleFocus(page, '#logout');
  assertNoProblems(page);
  await page.context().close();
});

test('a guard is refused the pack station page and its API', async () => {
  const page = await newPage(browser);
  await logInVia(page, server, 'gus', PASSWORD, '/pack');
  await page.waitForSelector('#denied:not([hidden])');
  assert.match(await page.textContent('#denied-text'), /packer.*gus.*gate guard/);
  assert.equal(await page.isHidden('#main'), true);
  const gus = await page.evaluate(() => sessionStorage.getItem('bondgate.token'));
  assert.equal((await call(server, gus, 'POST', '/pack-stations/P1/scans', { seq: 1, code: 'TOTE-1' })).status, 403);
  await shot(page, 'pack-11-guard-denied');
  await assertAccessible(page, 'pack station, denied');
  assertNoProblems(page);
  await page.context().close();
});
