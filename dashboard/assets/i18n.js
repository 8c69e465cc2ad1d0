// The page's language: the catalogue dashboard/i18n.py chose for this page (sent with it, as the
// component's `lang` and `catalogue`), its strings by key, and numbers and dates in its locale: the
// browser's own for that language if it has one (en-GB, de-AT), else the language's.
// A catalogue entry is a string with `{name}` placeholders, or plural forms ({"one": …, "other": …})
// chosen by `n` with Intl.PluralRules. A key missing from the catalogue shows as itself.

let LANG = "en";
let LOCALE = "en";
let CATALOGUE = {};
let PLURALS = new Intl.PluralRules("en");
let NUMBERS = new Intl.NumberFormat("en");

// Use `catalogue` (the language `lang`'s) from now on.
export function setLanguage(lang, catalogue) {
  LANG = lang || "en";
  LOCALE = (navigator.languages || []).find((tag) => tag.split("-")[0].toLowerCase() === LANG) || LANG;
  CATALOGUE = catalogue || {};
  PLURALS = new Intl.PluralRules(LOCALE);
  NUMBERS = new Intl.NumberFormat(LOCALE);
}

export function language() {
  return LANG;
}

// The string `key` with its `{name}`s from `vars`; a number among them is formatted for the language.
export function t(key, vars = {}) {
  let entry = CATALOGUE[key];
  if (entry === undefined) return key;
  if (typeof entry === "object") entry = entry[PLURALS.select(vars.n ?? 0)] ?? entry.other;
  return entry.replace(/\{(\w+)\}/g, (whole, name) => {
    const value = vars[name];
    if (value === undefined) return whole;
    return typeof value === "number" ? NUMBERS.format(value) : String(value);
  });
}

// Why the server refused, for people: the catalogue's sentence for its error's code (`error.<code>`,
// or `refusal.<code>` for a refused upload's) when there is one, since the server's own message is in
// English; else that message, else the HTTP status. Codes whose message carries the details (such as
// `bad_argument`) have no sentence of their own, so their message is kept.
export function failure(answer, status) {
  const error = answer?.errors?.[0] || answer?.error;
  const key = answer?.errors?.[0] ? `refusal.${error.code}` : `error.${error?.code}`;
  if (error?.code && CATALOGUE[key] !== undefined) return t(key);
  return error?.reason || error?.message || `HTTP ${status}`;
}

// `n` as the locale writes it; `options` as Intl.NumberFormat's (e.g. fraction digits).
export function formatNumber(n, options = null) {
  return options ? new Intl.NumberFormat(LOCALE, options).format(n) : NUMBERS.format(n);
}

// A date and time, numeric, as the locale writes them ("12/7/2026, 2:05:33 PM", "7.12.2026, 14:05:33").
export function formatDate(date) {
  return date.toLocaleString(LOCALE);
}

// The language switch of the header: a labelled select of `languages` ([code, name] pairs), showing
// the current one. A pick is remembered in the `fotoflo_lang` cookie (dashboard/i18n.py's COOKIE: a
// served page's next load is in that language) and told to `onPick(code)`, which shows it now.
export function languageSwitch(languages, onPick) {
  const select = document.createElement("select");
  select.className = "ff-select ff-lang";
  select.dataset.testid = "language";
  select.title = t("language.label");
  select.setAttribute("aria-label", t("language.label"));
  for (const [code, name] of languages || []) {
    const option = document.createElement("option");
    option.value = code;
    option.lang = code;
    option.textContent = name;
    select.append(option);
  }
  select.value = LANG;
  select.addEventListener("change", () => {
    document.cookie = `fotoflo_lang=${encodeURIComponent(select.value)}; path=/; max-age=31536000; SameSite=Lax`;
    onPick(select.value);
  });
  return select;
}
