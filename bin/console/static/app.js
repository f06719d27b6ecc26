// The operator console's one script. Progressive enhancement only: every page and every form
// works without it. Served as a file under a per-response CSP nonce; it never injects markup
// and carries no text of its own (labels come from the page, i.e. from the catalogue).
(() => {
  'use strict';
  const lang = document.documentElement.lang || undefined;

  // Times in the viewer's own time zone and language. `date` is a calendar day the server
  // counted in UTC (a chart bucket): shown as that day, not shifted into another one.
  const FORMATS = {
    datetime: { dateStyle: 'medium', timeStyle: 'short' },
    day: { month: '2-digit', day: '2-digit' },
    date: { month: '2-digit', day: '2-digit', timeZone: 'UTC' },
    hour: { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
  };
  for (const el of document.querySelectorAll('time[datetime], [data-time]')) {
    const iso = el.getAttribute('data-time') || el.getAttribute('datetime');
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) continue;
    const format = FORMATS[el.getAttribute('data-fmt')] || FORMATS.datetime;
    el.textContent = new Intl.DateTimeFormat(lang, format).format(when);
    if (el.localName === 'time') el.setAttribute('title', iso);
  }

  // Forms that ask first (the question is in the page's language), and one submission per click.
  document.addEventListener('submit', (event) => {
    const form = event.target;
    const question = form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    // After the browser has taken the form's values (a disabled submitter would drop its own).
    setTimeout(() => {
      for (const button of form.querySelectorAll('button[type=submit]')) button.disabled = true;
    }, 0);
  });

  // The language menu switches on change; its button is only for a browser without this script.
  for (const form of document.querySelectorAll('form[data-autosubmit]')) {
    const select = form.querySelector('select');
    if (!select) continue;
    select.addEventListener('change', () => form.requestSubmit());
    for (const button of form.querySelectorAll('.js-hide')) button.hidden = true;
  }
})();
