/**
 * The one message catalogue: every string an operator reads — the CLI, the operator console,
 * the reconcile report's CSV headers — in English and Simplified Chinese, under one set of keys.
 *
 * `en.ts` defines the keys; `zh-CN.ts` is typed against them, so a key missing from the
 * Chinese side (or one only it has) is a compile error, and `test/unit/messages.test.ts` also
 * checks placeholders and that every key the code uses exists.
 *
 * Placeholders are `{name}`; a missing parameter stays visible as `{name}` rather than
 * becoming an empty string, so a mistake shows on the screen instead of hiding a value.
 * Machine output (JSON, report class codes, exit codes) is never translated.
 */
import { en } from './en';
import { zhCN } from './zh-CN';

export type Locale = 'en' | 'zh-CN';
export const LOCALES: readonly Locale[] = ['en', 'zh-CN'];
export type MessageKey = keyof typeof en;
export type MessageParams = Record<string, string | number>;
export type Translate = (key: MessageKey, params?: MessageParams) => string;

export const CATALOGUE: Readonly<Record<Locale, Readonly<Record<MessageKey, string>>>> = { en, 'zh-CN': zhCN };

export function isMessageKey(key: string): key is MessageKey {
  return Object.hasOwn(en, key);
}

export function message(locale: Locale, key: MessageKey, params?: MessageParams): string {
  const text = CATALOGUE[locale][key] ?? en[key];
  if (!params) return text;
  return text.replace(/\{([A-Za-z0-9_]+)\}/g, (whole, name: string) => (Object.hasOwn(params, name) ? String(params[name]) : whole));
}

export function translator(locale: Locale): Translate {
  return (key, params) => message(locale, key, params);
}

/** `zh`, `zh_CN.UTF-8`, `zh-Hans`, `zh-SG` … → Chinese; anything else (C, POSIX, en_US …) → English. */
export function localeOf(tag: string | undefined): Locale | undefined {
  if (!tag) return undefined;
  const lang = tag.trim().split(/[.@]/)[0]!.replace('_', '-').toLowerCase();
  if (lang === '' || lang === 'c' || lang === 'posix') return undefined;
  return lang === 'zh' || lang.startsWith('zh-') ? 'zh-CN' : 'en';
}

/**
 * The locale a command-line process speaks, the POSIX way: LC_ALL, then LC_MESSAGES, then
 * LANG — the first one that is set decides (LANG=C.UTF-8 → English).
 */
export function localeFromEnv(env: NodeJS.ProcessEnv = process.env): Locale {
  for (const name of ['LC_ALL', 'LC_MESSAGES', 'LANG'] as const) {
    const value = env[name];
    if (value) return localeOf(value) ?? 'en';
  }
  return 'en';
}

/**
 * The best of our locales for an HTTP Accept-Language header (RFC 9110 quality values):
 * the highest-weighted language we speak wins; ties keep the header's order.
 */
export function negotiateLocale(acceptLanguage: string | undefined, fallback: Locale = 'en'): Locale {
  if (!acceptLanguage) return fallback;
  const ranked = acceptLanguage
    .split(',')
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
      return { tag: tag!.trim(), q: q === undefined ? 1 : Number(q), index };
    })
    .filter((x) => x.tag && x.q > 0 && !Number.isNaN(x.q))
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { tag } of ranked) {
    if (tag === '*') return fallback;
    const lang = tag.toLowerCase();
    if (lang === 'zh' || lang.startsWith('zh-')) return 'zh-CN';
    if (lang === 'en' || lang.startsWith('en-')) return 'en';
  }
  return fallback;
}
