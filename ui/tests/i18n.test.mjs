// Every visible word comes from the catalogues: both languages have the
// same messages, and every key the pages and scripts use exists.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import en from '../web/i18n/en.js';
import zh from '../web/i18n/zh.js';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'web');

test('both catalogues have the same non-empty messages with the same placeholders', () => {
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  for (const [k, v] of Object.entries(en)) {
    assert.ok(v.trim() && zh[k].trim(), k);
    const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(names(zh[k]), names(v), k);
  }
});

test('every key the pages and scripts use is in the catalogues', async () => {
  const used = new Set();
  const pages = (await readdir(WEB)).map((f) => path.join(WEB, f));
  const partials = (await readdir(path.join(WEB, 'partials'))).map((f) => path.join(WEB, 'partials', f));
  for (const f of [...pages, ...partials]) {
    if (!f.endsWith('.html')) continue;
    const html = await readFile(f, 'utf8');
    for (const m of html.matchAll(/data-(?:i18n(?:-placeholder|-label|-title)?|title-key)="([^"]+)"/g)) used.add(m[1]);
  }
  for (const f of await readdir(path.join(WEB, 'js'))) {
    const js = await readFile(path.join(WEB, 'js', f), 'utf8');
    for (const m of js.matchAll(/\bt\('([a-z0-9_.]+)'/g)) used.add(m[1]);
  }
  assert.ok(used.size > 40, `only ${used.size} keys found`);
  assert.deepEqual([...used].filter((k) => !(k in en)), []);
});
