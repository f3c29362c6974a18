// The message catalogues and the 中文/English switch. Elements name their
// message with data-i18n (text), data-i18n-placeholder, data-i18n-label
// (aria-label) or data-i18n-title; code calls t(key, params).
import en from '../i18n/en.js';
import zh from '../i18n/zh.js';

const CATALOGUES = { en, zh };
const STORE_KEY = 'bondgate.lang';

function browserLang() {
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  return langs.some((l) => String(l).toLowerCase().startsWith('zh')) ? 'zh' : 'en';
}

let lang = CATALOGUES[localStorage.getItem(STORE_KEY)] ? localStorage.getItem(STORE_KEY) : browserLang();

export function currentLang() {
  return lang;
}

/** The message `key` in the current language, with {name} filled from `params`. */
export function t(key, params = {}) {
  const text = CATALOGUES[lang][key] ?? CATALOGUES.en[key];
  if (text === undefined) {
    console.warn(`bondgate: no message ${key}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** Fills every data-i18n* element under `root` and the document's language and title. */
export function applyI18n(root = document) {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  const titleKey = document.body.dataset.titleKey;
  if (titleKey) document.title = `${t(titleKey)} · ${t('app.name')}`;
}

export function setLang(next) {
  if (!CATALOGUES[next]) return;
  lang = next;
  localStorage.setItem(STORE_KEY, next);
  applyI18n();
  document.dispatchEvent(new CustomEvent('langchange', { detail: next }));
}

/** Makes `button` switch between 中文 and English. */
export function mountLangSwitch(button) {
  button.addEventListener('click', () => setLang(lang === 'zh' ? 'en' : 'zh'));
}

export const LANGS = Object.keys(CATALOGUES);
export const catalogues = CATALOGUES;
