// HazardWatch alarm-quality report page (/report): picks a period and a
// site, asks GET /api/report with the console's login (its session
// cookie, or a bearer token the console keeps), and shows the
// ISA-18.2 / EEMUA 191 figures; CSV and HTML are downloaded from the same
// endpoint. Plain JavaScript, nothing from elsewhere.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  let dict = { zh: {}, en: {} };
  let lang = localStorage.getItem('hazardwatch.lang') === 'en' ? 'en' : 'zh';
  let last = null; // the report shown
  const t = (key, vars) => {
    let s = (dict[lang] && dict[lang][key]) || dict.zh[key] || key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  };
  const token = () => sessionStorage.getItem('hazardwatch.token') || '';

  // Durations arrive in nanoseconds (Go's time.Duration).
  const dur = (ns) => {
    if (!ns) return '–';
    const s = ns / 1e9;
    if (s < 60) return Math.round(s) + (lang === 'en' ? ' s' : ' 秒');
    if (s < 3600) return (s / 60).toFixed(1) + (lang === 'en' ? ' min' : ' 分钟');
    return (s / 3600).toFixed(1) + (lang === 'en' ? ' h' : ' 小时');
  };
  const pct = (f) => (100 * f).toFixed(1) + ' %';
  const when = (s) => new Date(s).toLocaleString(lang === 'en' ? 'en-GB' : 'zh-CN', { hour12: false });
  const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);

  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function table(id, head, rows, fill) {
    const tab = $(id);
    tab.textContent = '';
    const tr = document.createElement('tr');
    for (const h of head) {
      const th = document.createElement('th');
      th.textContent = t(h);
      tr.appendChild(th);
    }
    tab.appendChild(tr);
    if (!rows || rows.length === 0) {
      const r = document.createElement('tr');
      cell(r, t('none')).colSpan = head.length;
      tab.appendChild(r);
      return;
    }
    for (const row of rows) {
      const r = document.createElement('tr');
      fill(r, row);
      tab.appendChild(r);
    }
  }

  function render() {
    const r = last;
    if (!r) return;
    const rows = [r.total, ...(r.sites || []), ...(r.sources || []), ...(r.officers || [])];
    table('kpis', ['scope', 'name', 'alarms', 'per10', 'peak', 'flood', 'chatterN', 'staleN', 'incidentsN', 'ack', 'close', 'open'], rows, (tr, x) => {
      cell(tr, x.scope === 'total' ? t('total') : t('scope_' + x.scope), 'k');
      cell(tr, x.name || x.key, 'k');
      cell(tr, x.alarms);
      cell(tr, x.per_10min.toFixed(2), x.per_10min > 2 ? 'bad' : '');
      cell(tr, x.peak_10min, x.peak_10min > 10 ? 'bad' : '');
      cell(tr, pct(x.flood_share), x.flood_share > 0 ? 'bad' : '');
      cell(tr, x.chattering, x.chattering ? 'bad' : '');
      cell(tr, x.stale, x.stale ? 'bad' : '');
      cell(tr, x.incidents);
      cell(tr, dur(x.time_to_ack.median) + ' / ' + dur(x.time_to_ack.p90));
      cell(tr, dur(x.time_to_close.median) + ' / ' + dur(x.time_to_close.p90));
      cell(tr, x.open_incidents);
    });
    $('topShare').textContent = t('topShare', { share: pct(r.top10_share) });
    table('bad', ['alarm', 'count', 'share'], r.bad_actors, (tr, b) => { cell(tr, b.alarm_id, 'k'); cell(tr, b.count); cell(tr, pct(b.share)); });
    table('chatter', ['alarm', 'count'], r.chattering, (tr, b) => { cell(tr, b.alarm_id, 'k'); cell(tr, b.count); });
    table('stale', ['alarm', 'since', 'for'], r.stale, (tr, s) => { cell(tr, s.alarm_id, 'k'); cell(tr, when(s.since)); cell(tr, dur(s.for)); });
    table('ages', r.open_by_age.map((a) => a.age), [r.open_by_age], (tr, as) => { for (const a of as) cell(tr, a.count); });
    table('incidents', ['incident', 'grade', 'opened', 'toAck', 'toClose', 'by', 'state'], r.incidents, (tr, i) => {
      cell(tr, i.id, 'k');
      cell(tr, t('grade_' + i.worst_grade), 'g-' + i.worst_grade);
      cell(tr, when(i.opened));
      cell(tr, dur(i.time_to_ack));
      cell(tr, dur(i.time_to_close));
      cell(tr, (i.acked_by || '') + (i.closed_by ? ' / ' + i.closed_by : ''), 'k');
      cell(tr, t('state_' + i.state), 'k');
    });
    const sel = $('site');
    const have = new Set([...sel.options].map((o) => o.value));
    for (const s of r.sites || []) {
      if (have.has(s.key)) continue;
      const o = document.createElement('option');
      o.value = s.key;
      o.textContent = s.name || s.key;
      sel.appendChild(o);
    }
  }

  function query(format) {
    const p = new URLSearchParams();
    p.set('from', new Date($('from').value).toISOString());
    p.set('to', new Date($('to').value).toISOString());
    if ($('site').value) p.set('site', $('site').value);
    if (format) p.set('format', format);
    if (format === 'html') p.set('lang', lang);
    return '/api/report?' + p.toString();
  }

  function banner(text) {
    const b = $('banner');
    b.textContent = text;
    b.hidden = !text;
  }

  async function get(format) {
    const headers = token() ? { Authorization: 'Bearer ' + token() } : {};
    const r = await fetch(query(format), { credentials: 'same-origin', headers });
    if (r.status === 401) {
      // Log in on the console, then come back here.
      banner(t('login'));
      location.href = '/#next=' + encodeURIComponent(location.pathname);
      return null;
    }
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(body.error || String(r.status));
    }
    return r;
  }

  async function show() {
    try {
      const r = await get('');
      if (!r) return;
      last = await r.json();
      banner('');
      render();
    } catch (e) {
      banner(t('failed', { error: e.message }));
    }
  }

  async function download(format) {
    try {
      const r = await get(format);
      if (!r) return;
      const a = document.createElement('a');
      a.href = URL.createObjectURL(await r.blob());
      a.download = 'hazardwatch-report.' + format;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      banner(t('failed', { error: e.message }));
    }
  }

  function applyLanguage() {
    document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
    for (const el of document.querySelectorAll('[data-r]')) el.textContent = t(el.dataset.r);
    document.title = t('title');
    render();
  }

  function setLast(hours) {
    const to = new Date();
    $('to').value = local(to);
    $('from').value = local(new Date(to.getTime() - hours * 3600e3));
  }

  async function start() {
    dict = await (await fetch('/console/report-i18n.json')).json();
    setLast(24);
    applyLanguage();
    $('period').addEventListener('submit', (e) => { e.preventDefault(); show(); });
    for (const b of document.querySelectorAll('[data-last]')) b.addEventListener('click', () => { setLast(Number(b.dataset.last)); show(); });
    $('csv').addEventListener('click', () => download('csv'));
    $('html').addEventListener('click', () => download('html'));
    $('lang').addEventListener('click', () => {
      lang = lang === 'en' ? 'zh' : 'en';
      localStorage.setItem('hazardwatch.lang', lang);
      applyLanguage();
    });
    show();
  }
  start();
})();
