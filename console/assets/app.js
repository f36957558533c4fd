// HazardWatch officers' console. Plain JavaScript, no build step and
// nothing from elsewhere: the command centre's network is closed.
//
// Data comes from one server-sent events stream, /api/stream (a snapshot,
// then changes); actions go to the alarm API. The officer logs in with a
// name and password (POST /api/session): the centre keeps the session in an
// HttpOnly cookie the page never sees, and gives the page a CSRF token to
// send with every action (X-HazardWatch-CSRF). The
// board and the alarm list are built once per snapshot and then patched
// element by element, so 1,000 sources and 200 alarms stay light.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const GRADES = ['none', 'blue', 'yellow', 'orange', 'red'];
  const rank = (g) => Math.max(0, GRADES.indexOf(g));

  // --- language: every label comes from i18n.json ---------------------
  let dict = { zh: {}, en: {} };
  let lang = localStorage.getItem('hazardwatch.lang') === 'en' ? 'en' : 'zh';
  function t(key, vars) {
    let s = (dict[lang] && dict[lang][key]) || dict.zh[key] || key;
    if (vars) {
      s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    }
    return s;
  }
  function applyLanguage() {
    document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
    document.title = t('title');
    $('mute').textContent = muted ? t('soundOff') : t('soundOn');
    setConn(connState);
    showWho();
    // Relabel what is on screen; a language switch is rare, so a full pass is fine.
    for (const e of sources.values()) paintTile(e);
    for (const e of alarms.values()) paintRow(e);
    for (const e of incidents.values()) paintIncident(e);
    for (const e of gateways.values()) paintGateway(e);
    for (const s of sites.values()) s.dirty = true;
    scheduleCounts();
  }

  // --- state ----------------------------------------------------------
  // Who is logged in, as GET /api/session tells; nothing is stored in the
  // browser but the centre's HttpOnly cookie.
  const session = { name: '', display: '', role: '', csrf: '' };
  const CSRF = 'X-HazardWatch-CSRF';
  const sites = new Map(); // id → {site, el, count, tiles, dirty}
  const sources = new Map(); // site/source → {src, el}
  const alarms = new Map(); // id → {a, el}
  const incidents = new Map(); // id → {inc, el}
  const gateways = new Map(); // site/gateway → {g, el}
  let es = null;
  let connState = 'connecting';

  // --- time -----------------------------------------------------------
  const pad = (n) => String(n).padStart(2, '0');
  function clock(d) { return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }
  function when(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return '';
    const now = new Date();
    if (d.toDateString() === now.toDateString()) return clock(d);
    return pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + clock(d);
  }
  // An alarm's words in the officer's language: the centre renders every
  // catalog language into messages (internal/i18n); message is Chinese.
  function say(a) {
    return (a.messages && a.messages[lang]) || a.message || '';
  }
  function fullTime(iso) {
    const d = new Date(iso);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + clock(d);
  }
  function tickClock() {
    $('clock').textContent = fullTime(new Date());
    for (const e of incidents.values()) paintAge(e);
  }
  // age says how long ago, in the largest unit that fits.
  function age(iso) {
    const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return t('ageSeconds', { n: s });
    if (s < 3600) return t('ageMinutes', { n: Math.floor(s / 60) });
    if (s < 86400) return t('ageHours', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
    return t('ageDays', { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
  }

  // --- sound: a short beep pattern for new red and orange warnings -----
  let audio = null;
  let muted = localStorage.getItem('hazardwatch.mute') === '1';
  function unlockAudio() {
    // Browsers let a page play sound only after the user did something.
    if (!audio && window.AudioContext) {
      try { audio = new AudioContext(); } catch (e) { audio = null; }
    }
    if (audio && audio.state === 'suspended') audio.resume();
  }
  function beep(grade) {
    if (muted || !audio) return;
    const red = grade === 'red';
    const t0 = audio.currentTime + 0.02;
    for (let i = 0; i < (red ? 3 : 2); i++) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = red ? 1250 : 880;
      osc.type = 'square';
      gain.gain.value = 0.08;
      osc.connect(gain).connect(audio.destination);
      osc.start(t0 + i * 0.28);
      osc.stop(t0 + i * 0.28 + 0.16);
    }
  }

  // --- connection -----------------------------------------------------
  function setConn(state) {
    connState = state;
    const el = $('conn');
    el.dataset.state = state;
    el.textContent = t(state === 'live' ? 'connLive' : state === 'down' ? 'connDown' : 'connConnecting');
    $('banner').hidden = state !== 'down';
  }

  function connect() {
    if (es) es.close();
    setConn('connecting');
    es = new EventSource('/api/stream');
    es.addEventListener('snapshot', (ev) => applySnapshot(JSON.parse(ev.data)));
    es.addEventListener('alarm', (ev) => applyAlarm(JSON.parse(ev.data)));
    es.addEventListener('source', (ev) => applySource(JSON.parse(ev.data)));
    es.addEventListener('gateway', (ev) => applyGateway(JSON.parse(ev.data)));
    es.addEventListener('incident', (ev) => applyIncident(JSON.parse(ev.data)));
    es.addEventListener('live', (ev) => applyLive(JSON.parse(ev.data)));
    es.onopen = () => setConn('live');
    es.onerror = () => {
      setConn('down');
      // The browser retries by itself unless the answer was not a stream
      // (the centre restarting, or the session cookie gone): log in again.
      if (es.readyState === EventSource.CLOSED) setTimeout(resume, 3000);
    };
  }

  // whoAmI asks the centre who the cookie belongs to: null when nobody.
  async function whoAmI() {
    const r = await fetch('/api/session', { headers: { Accept: 'application/json' } });
    if (r.status === 401) return null;
    if (!r.ok) throw new Error(r.status + ' ' + r.statusText);
    return r.json();
  }

  function adopt(info) {
    Object.assign(session, { name: info.name, display: info.display || info.name, role: info.role, csrf: info.csrf || '' });
    showWho();
  }

  async function resume() {
    try {
      const info = await whoAmI();
      if (!info) { showLogin(session.name ? t('sessionEnded') : ''); return; }
      adopt(info);
      connect();
    } catch (e) {
      setTimeout(resume, 3000);
    }
  }

  // --- login ----------------------------------------------------------
  function showLogin(error) {
    if (es) { es.close(); es = null; }
    Object.assign(session, { name: '', display: '', role: '', csrf: '' });
    showWho();
    const err = $('login-error');
    err.hidden = !error;
    err.textContent = error || '';
    $('login-password').value = '';
    const d = $('login-dialog');
    if (!d.open) d.showModal();
    $($('login-user').value ? 'login-password' : 'login-user').focus();
  }

  async function logIn(user, password) {
    const err = $('login-error');
    err.hidden = true;
    let r;
    try {
      r = await fetch('/api/session', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: user, password }),
      });
    } catch (e) {
      err.textContent = t('serverError', { error: e.message });
      err.hidden = false;
      return;
    }
    if (!r.ok) {
      err.textContent = r.status === 401 ? t('badLogin') : t('serverError', { error: r.status + ' ' + r.statusText });
      err.hidden = false;
      $('login-password').value = '';
      $('login-password').focus();
      return;
    }
    adopt(await r.json());
    $('login-password').value = '';
    // Another page of the console sent the officer here to log in
    // (/#next=/regions): back there.
    const next = new URLSearchParams(location.hash.slice(1)).get('next') || '';
    if (/^\/[a-z]+$/.test(next)) { location.replace(next); return; }
    $('login-dialog').close();
    connect();
  }

  function onLogin(ev) {
    ev.preventDefault();
    unlockAudio();
    logIn($('login-user').value.trim(), $('login-password').value);
  }

  // The roles that operate alarms; viewers and supervisors see no buttons.
  const canAct = (role) => role === 'officer' || role === 'admin';
  const ROLE_KEYS = { viewer: 'roleViewer', officer: 'roleOfficer', supervisor: 'roleSupervisor', admin: 'roleAdmin' };

  function showWho() {
    document.body.classList.toggle('viewer', !canAct(session.role));
    document.body.classList.toggle('supervisor', session.role === 'supervisor' || session.role === 'admin');
    $('who').textContent = session.role ? session.display + ' · ' + t(ROLE_KEYS[session.role] || session.role) : '';
  }

  async function logout() {
    if (es) { es.close(); es = null; }
    await fetch('/api/session', { method: 'DELETE', headers: { [CSRF]: session.csrf } }).catch(() => {});
    showLogin();
  }

  // --- the board ------------------------------------------------------
  function makeTile(src) {
    const el = document.createElement('button');
    el.type = 'button';
    el.className = 'tile';
    el.dataset.key = src.site + '/' + src.source;
    el.append(span('name'), span('label'), span('meta'));
    el.firstChild.textContent = src.name;
    el.title = src.name;
    return el;
  }
  function span(cls) {
    const s = document.createElement('span');
    s.className = cls;
    return s;
  }

  // paintTile shows a source's grade by colour and text; grey when it has
  // no data and nothing above blue (stale data is itself graded blue).
  function paintTile(e) {
    const s = e.src;
    const grey = !s.data && rank(s.grade) <= 1;
    e.el.className = 'tile g-' + s.grade + (grey ? ' nodata' : '') + (!s.data ? ' stale-data' : '');
    e.el.dataset.grade = s.grade;
    e.el.dataset.data = s.data ? 'yes' : 'no';
    let label = t('grade_' + s.grade);
    if (!s.data) label = s.grade === 'none' ? t('noData') : label + ' · ' + t('noData');
    e.el.children[1].textContent = label;
    e.el.children[2].textContent = t('gb18218', { grade: s.gb18218_grade });
    e.el.hidden = !visible(s);
  }

  function visible(s) {
    const q = $('filter').value.trim().toLowerCase();
    if (q && !s.name.toLowerCase().includes(q) && !s.source.toLowerCase().includes(q)) return false;
    if ($('only-warn').checked && s.grade === 'none' && s.data) return false;
    return true;
  }
  function refilter() {
    for (const e of sources.values()) e.el.hidden = !visible(e.src);
  }

  function buildBoard(snap) {
    const board = $('board');
    sites.clear();
    sources.clear();
    const frag = document.createDocumentFragment();
    for (const site of snap.sites) {
      const sec = document.createElement('section');
      sec.className = 'site';
      sec.dataset.site = site.id;
      const h = document.createElement('h3');
      h.append(document.createTextNode(site.name), document.createElement('small'));
      const tiles = document.createElement('div');
      tiles.className = 'tiles';
      sec.append(h, tiles);
      frag.append(sec);
      sites.set(site.id, { site, el: sec, count: h.lastChild, tiles, dirty: true });
    }
    for (const src of snap.sources) addSource(src);
    board.replaceChildren(frag);
    scheduleCounts();
  }

  function addSource(src) {
    let s = sites.get(src.site);
    if (!s) return; // a site added by a reload arrives with the next snapshot
    const e = { src, el: makeTile(src) };
    sources.set(e.el.dataset.key, e);
    paintTile(e);
    s.tiles.append(e.el);
  }

  function applySource(src) {
    const e = sources.get(src.site + '/' + src.source);
    if (!e) { addSource(src); return; }
    const s = sites.get(src.site);
    if (s) s.dirty = true;
    e.src = src;
    paintTile(e);
    scheduleCounts();
  }

  // Counts per grade, overall and per site, at most once per frame.
  let countsQueued = false;
  function scheduleCounts() {
    if (countsQueued) return;
    countsQueued = true;
    requestAnimationFrame(() => { countsQueued = false; paintCounts(); });
  }
  function tally(list) {
    const n = { red: 0, orange: 0, yellow: 0, blue: 0, none: 0, nodata: 0 };
    for (const s of list) {
      if (!s.data && rank(s.grade) <= 1) n.nodata++;
      else n[s.grade]++;
    }
    return n;
  }
  function chips(n, el) {
    const frag = document.createDocumentFragment();
    for (const g of ['red', 'orange', 'yellow', 'blue', 'none', 'nodata']) {
      if (!n[g] && el.id !== 'summary') continue; // a site shows only what it has
      const c = document.createElement('span');
      c.className = 'chip ' + (g === 'nodata' ? 'nodata' : 'g-' + g);
      c.dataset.grade = g;
      c.textContent = (g === 'nodata' ? t('noData') : t('grade_' + g)) + ' ' + n[g];
      frag.append(c);
    }
    el.replaceChildren(frag);
  }
  function paintCounts() {
    const all = [];
    const bySite = new Map();
    for (const e of sources.values()) {
      all.push(e.src);
      if (!bySite.has(e.src.site)) bySite.set(e.src.site, []);
      bySite.get(e.src.site).push(e.src);
    }
    chips(tally(all), $('summary'));
    for (const [id, s] of sites) {
      if (!s.dirty) continue;
      s.dirty = false;
      chips(tally(bySite.get(id) || []), s.count);
    }
  }

  // --- the alarm list -------------------------------------------------
  const ACTIONS = [
    ['ack', 'act_ack', (a) => a.state === 'unacked' || a.state === 'rtn_unacked'],
    ['shelve', 'act_shelve', (a) => a.state !== 'shelved' && a.state !== 'out_of_service'],
    ['unshelve', 'act_unshelve', (a) => a.state === 'shelved'],
    ['rts', 'act_rts', (a) => a.state === 'out_of_service'],
    ['comment', 'act_comment', () => true],
  ];

  // actionButton is a row's button for an action; its label is painted
  // with the row, in the officer's language.
  function actionButton(kind, cls) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    b.dataset.action = kind;
    return b;
  }

  function makeRow(id) {
    const tr = document.createElement('tr');
    tr.dataset.id = id;
    tr.innerHTML = '<td class="grade"><span class="chip"></span><div class="state"></div></td><td class="time"></td>' +
      '<td class="what"><div class="src"></div><div class="msg"></div><div class="note"></div><div class="acts"></div></td>';
    const acts = tr.querySelector('.acts');
    for (const [kind] of ACTIONS) {
      acts.append(actionButton(kind, 'act ' + kind));
    }
    for (const kind of ['timeline', 'trend']) {
      acts.append(actionButton(kind, kind));
    }
    return tr;
  }

  function paintRow(e) {
    const a = e.a;
    const tr = e.el;
    const c = tr.children;
    tr.dataset.state = a.state;
    tr.dataset.grade = a.grade;
    tr.className = 'g-' + a.grade + '-row' + (a.state === 'unacked' && rank(a.grade) >= 3 ? ' blink' : '');
    const chip = c[0].firstChild;
    chip.className = 'chip g-' + a.grade;
    chip.textContent = t('grade_' + a.grade);
    c[0].lastChild.textContent = t('state_' + a.state);
    c[1].textContent = when(a.changed);
    c[1].title = a.changed ? fullTime(a.changed) : '';
    const what = c[2].children;
    const src = sources.get(a.site + '/' + a.source);
    what[0].textContent = src ? src.src.name : a.site + '/' + a.source;
    what[1].textContent = say(a);
    let note = '';
    if (a.state === 'shelved') note = t('shelvedBy', { officer: a.by, until: when(a.until), reason: a.reason });
    if (a.state === 'out_of_service') note = t('outOfServiceBy', { officer: a.by, reason: a.reason });
    what[2].textContent = note;
    for (const b of what[3].children) {
      const act = ACTIONS.find((x) => x[0] === b.dataset.action);
      b.textContent = t(act ? act[1] : 'act_' + b.dataset.action);
      if (act) b.hidden = !act[2](a);
    }
  }

  // Most severe first; within a grade, the ones still to acknowledge, then
  // the newest.
  function before(a, b) {
    if (rank(a.grade) !== rank(b.grade)) return rank(a.grade) > rank(b.grade);
    const ua = a.state === 'unacked' || a.state === 'rtn_unacked';
    const ub = b.state === 'unacked' || b.state === 'rtn_unacked';
    if (ua !== ub) return ua;
    if (a.changed !== b.changed) return a.changed > b.changed;
    return a.id < b.id;
  }
  function sortKey(a) { return a.grade + '|' + a.state + '|' + a.changed; }

  function place(e) {
    const body = $('alarm-rows');
    let at = null;
    for (const tr of body.children) {
      if (tr === e.el) continue;
      const other = alarms.get(tr.dataset.id);
      if (other && before(e.a, other.a)) { at = tr; break; }
    }
    if (e.el.nextSibling !== at || !e.el.isConnected) body.insertBefore(e.el, at);
  }

  function upsertAlarm(a) {
    let e = alarms.get(a.id);
    const isNew = !e;
    if (isNew) {
      e = { a, el: makeRow(a.id) };
      alarms.set(a.id, e);
    }
    const moved = isNew || sortKey(e.a) !== sortKey(a);
    e.a = a;
    paintRow(e);
    if (moved) place(e);
  }

  function removeAlarm(id) {
    const e = alarms.get(id);
    if (!e) return;
    e.el.remove();
    alarms.delete(id);
  }

  function alarmCount() {
    $('alarm-count').textContent = alarms.size;
    $('no-alarms').hidden = alarms.size > 0;
  }

  function applyAlarm(ch) {
    if (ch.alarm) upsertAlarm(ch.alarm);
    else removeAlarm(ch.event.alarm_id);
    alarmCount();
  }

  // --- the incidents: the officer's main list, one row per hazard source -
  const INCIDENT_ACTIONS = [
    ['incident_ack', 'act_ack', (i) => !i.acknowledged && i.state !== 'closed'],
    ['incident_disposal', 'act_disposal', (i) => i.acknowledged && !i.disposal && i.state !== 'closed'],
    // County and city supervisors urge the enterprise (督办).
    ['incident_urge', 'act_urge', (i) => i.state !== 'closed'],
  ];

  function makeIncidentRow(id) {
    const tr = document.createElement('tr');
    tr.dataset.id = id;
    tr.innerHTML = '<td class="grade"><span class="chip now"></span><div class="worst"></div><div class="ack"></div></td>' +
      '<td class="what"><div class="src"></div><ul class="conds"></ul><div class="note"></div><div class="acts"></div></td>' +
      '<td class="age"></td>';
    const acts = tr.querySelector('.acts');
    for (const [kind] of INCIDENT_ACTIONS) {
      acts.append(actionButton(kind, (kind === 'incident_urge' ? 'urge ' : 'act ') + kind));
    }
    for (const kind of ['incident_timeline', 'incident_trend']) {
      acts.append(actionButton(kind, kind));
    }
    return tr;
  }

  // liveText shows a condition's live values: the point's newest reading,
  // or each voting point's.
  function liveText(c) {
    const parts = [];
    for (const l of c.live || []) {
      parts.push(l.has_value ? num(l.value) + (l.unit ? ' ' + l.unit : '') : t('noValue', { quality: l.quality || '—' }));
    }
    return parts.join(' / '); // a vote's points in their order; their names are on their own rows
  }

  function paintIncident(e) {
    const i = e.inc;
    const tr = e.el;
    const c = tr.children;
    tr.dataset.grade = i.grade;
    tr.dataset.worst = i.worst_grade;
    tr.dataset.state = i.state;
    tr.dataset.acked = i.acknowledged ? 'yes' : 'no';
    tr.className = 'g-' + (i.grade === 'none' ? i.worst_grade : i.grade) + '-row' +
      (!i.acknowledged && rank(i.grade) >= 3 ? ' blink' : '') + (i.state === 'normal' ? ' normal' : '');
    const chip = c[0].children[0];
    chip.className = 'chip now g-' + i.grade;
    chip.textContent = i.state === 'normal' ? t('incidentNormal') : t('grade_' + i.grade);
    c[0].children[1].textContent = i.worst_grade !== i.grade ? t('worstGrade', { grade: t('grade_' + i.worst_grade) }) : '';
    c[0].children[2].textContent = i.acknowledged ? t('ackedBy', { officer: i.acked_by || '' }) : t('notAcked');
    const what = c[1].children;
    const site = sites.get(i.site);
    const src = sources.get(i.site + '/' + i.source);
    what[0].textContent = (site ? site.site.name : i.site) + ' · ' + (src ? src.src.name : i.source);
    const frag = document.createDocumentFragment();
    const conds = (i.conditions || []).slice().sort((a, b) => (a.active !== b.active ? (a.active ? -1 : 1) : rank(b.grade) - rank(a.grade)));
    for (const cd of conds) {
      const li = document.createElement('li');
      li.dataset.alarm = cd.alarm_id;
      li.dataset.active = cd.active ? 'yes' : 'no';
      const g = document.createElement('span');
      g.className = 'chip g-' + (cd.active ? cd.grade : 'none');
      g.textContent = cd.condition;
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = cd.name || (cd.point ? cd.point : t('cond_' + cd.condition));
      const live = document.createElement('span');
      live.className = 'live';
      live.textContent = liveText(cd);
      const st = document.createElement('span');
      st.className = 'state';
      st.textContent = cd.active ? t('state_' + cd.state) : t('condCleared');
      li.append(g, name, live, st);
      frag.append(li);
    }
    what[1].replaceChildren(frag);
    what[2].textContent = i.disposal ? t('disposalFiled', { officer: i.disposal.by_display || i.disposal.by, cause: t('cause_' + i.disposal.cause) }) : '';
    for (const b of what[3].children) {
      const act = INCIDENT_ACTIONS.find((x) => x[0] === b.dataset.action);
      b.textContent = t(act ? act[1] : b.dataset.action === 'incident_timeline' ? 'act_timeline' : 'act_trend');
      if (act) b.hidden = !act[2](i);
    }
    paintAge(e);
  }
  function paintAge(e) {
    const cell = e.el.children[2];
    cell.textContent = age(e.inc.opened_at);
    cell.title = t('openedAt', { time: fullTime(e.inc.opened_at) });
  }

  // Worst now first, then the worst reached, the unacknowledged, the newest.
  function incBefore(a, b) {
    if (rank(a.grade) !== rank(b.grade)) return rank(a.grade) > rank(b.grade);
    if (rank(a.worst_grade) !== rank(b.worst_grade)) return rank(a.worst_grade) > rank(b.worst_grade);
    if (a.acknowledged !== b.acknowledged) return !a.acknowledged;
    if (a.opened_at !== b.opened_at) return a.opened_at > b.opened_at;
    return a.id < b.id;
  }
  function placeIncident(e) {
    const body = $('incident-rows');
    let at = null;
    for (const tr of body.children) {
      if (tr === e.el) continue;
      const other = incidents.get(tr.dataset.id);
      if (other && incBefore(e.inc, other.inc)) { at = tr; break; }
    }
    if (e.el.nextSibling !== at || !e.el.isConnected) body.insertBefore(e.el, at);
  }
  function incidentCount() {
    $('incident-count').textContent = incidents.size;
    $('no-incidents').hidden = incidents.size > 0;
  }
  function upsertIncident(inc) {
    let e = incidents.get(inc.id);
    if (!e) {
      e = { inc, el: makeIncidentRow(inc.id) };
      incidents.set(inc.id, e);
    }
    e.inc = inc;
    paintIncident(e);
    placeIncident(e);
  }
  function applyIncident(ch) {
    const ev = ch.event;
    if (ch.incident) upsertIncident(ch.incident);
    else {
      const e = incidents.get(ev.incident_id);
      if (e) { e.el.remove(); incidents.delete(ev.incident_id); }
    }
    incidentCount();
    const i = ch.incident;
    const louder = ev.type === 'opened' || (ev.type === 'grade_changed' && rank(ev.grade) > rank(ev.prev_grade));
    if (i && louder && !i.acknowledged && rank(i.grade) >= 3) beep(i.grade);
    if ($('timeline-dialog').open && $('timeline-dialog').dataset.kind === 'incident' && $('timeline-id').textContent === ev.incident_id) {
      openIncidentTimeline(ev.incident_id);
    }
  }
  function buildIncidents(list) {
    incidents.clear();
    const rows = list.slice().sort((a, b) => (incBefore(a, b) ? -1 : incBefore(b, a) ? 1 : 0));
    const frag = document.createDocumentFragment();
    for (const inc of rows) {
      const e = { inc, el: makeIncidentRow(inc.id) };
      incidents.set(inc.id, e);
      paintIncident(e);
      frag.append(e.el);
    }
    $('incident-rows').replaceChildren(frag);
    incidentCount();
  }
  // applyLive takes the newest readings of the incidents' points.
  function applyLive(list) {
    const by = new Map(list.map((l) => [l.site + '/' + l.point, l]));
    for (const e of incidents.values()) {
      let changed = false;
      for (const cd of e.inc.conditions || []) {
        for (const l of cd.live || []) {
          const n = by.get(e.inc.site + '/' + l.point);
          if (n) { Object.assign(l, { value: n.value, has_value: n.has_value, quality: n.quality, time: n.time }); changed = true; }
        }
        if (!cd.live && cd.point && by.has(e.inc.site + '/' + cd.point)) {
          const n = by.get(e.inc.site + '/' + cd.point);
          cd.live = [{ point: cd.point, value: n.value, has_value: n.has_value, quality: n.quality, time: n.time, unit: cd.unit }];
          changed = true;
        }
      }
      if (changed) paintIncident(e);
    }
  }

  function buildAlarms(list) {
    alarms.clear();
    const rows = list.slice().sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
    const frag = document.createDocumentFragment();
    for (const a of rows) {
      const e = { a, el: makeRow(a.id) };
      alarms.set(a.id, e);
      paintRow(e);
      frag.append(e.el);
    }
    $('alarm-rows').replaceChildren(frag);
    alarmCount();
  }

  // --- gateways -------------------------------------------------------
  function paintGateway(e) {
    const g = e.g;
    const site = sites.get(g.site);
    const st = g.state === 'online' || g.state === 'offline' ? g.state : 'unknown';
    e.el.dataset.state = st;
    e.el.children[0].className = 'chip gw-state ' + st;
    e.el.children[0].textContent = st === 'unknown' ? t('unknownState') : t(st);
    e.el.children[1].textContent = (site ? site.site.name : g.site) + ' · ' + g.gateway;
    e.el.children[2].textContent = st === 'online' && g.since ? t('onlineSince', { since: when(g.since) }) : when(g.updated);
  }
  function applyGateway(g) {
    const key = g.site + '/' + g.gateway;
    let e = gateways.get(key);
    if (!e) {
      const li = document.createElement('li');
      li.dataset.key = key;
      li.append(span('chip'), span('name'), document.createElement('small'));
      e = { g, el: li };
      gateways.set(key, e);
      $('gateways').append(li);
    }
    e.g = g;
    paintGateway(e);
    $('no-gateways').hidden = gateways.size > 0;
  }

  function applySnapshot(snap) {
    buildBoard(snap);
    buildAlarms(snap.alarms || []);
    buildIncidents(snap.incidents || []);
    gateways.clear();
    $('gateways').replaceChildren();
    for (const g of snap.gateways || []) applyGateway(g);
    $('no-gateways').hidden = gateways.size > 0;
    document.body.classList.remove('loading');
    document.body.dataset.snapshot = snap.time;
  }

  // --- actions --------------------------------------------------------
  let pending = null; // {kind, id}
  const PATHS = { ack: 'ack', shelve: 'shelve', unshelve: 'unshelve', rts: 'return-to-service', comment: 'comment' };
  const pathOf = (kind, id) => kind.startsWith('incident_')
    ? '/api/incidents/' + encodeURIComponent(id) + '/' + kind.slice('incident_'.length)
    : '/api/alarms/' + encodeURIComponent(id) + '/' + PATHS[kind];

  // authHeaders: the cookie goes by itself; the CSRF token proves the
  // request comes from this page.
  function authHeaders(extra) {
    return Object.assign({ [CSRF]: session.csrf }, extra || {});
  }

  function incidentSummary(i) {
    const site = sites.get(i.site);
    const src = sources.get(i.site + '/' + i.source);
    return t('grade_' + (i.grade === 'none' ? i.worst_grade : i.grade)) + ' · ' + (site ? site.site.name : i.site) + ' · ' +
      (src ? src.src.name : i.source) + ' · ' + t('conditionCount', { n: (i.conditions || []).length });
  }

  function openAction(kind, id) {
    const isIncident = kind.startsWith('incident_');
    const e = isIncident ? incidents.get(id) : alarms.get(id);
    if (!e) return;
    pending = { kind, id };
    $('action-title').textContent = t('actionTitle_' + kind);
    $('action-alarm').textContent = isIncident ? incidentSummary(e.inc) : t('grade_' + e.a.grade) + ' · ' + say(e.a);
    // Actions are recorded under the account: the name is shown, not asked.
    $('action-officer').value = session.display === session.name ? session.name : session.display + ' (' + session.name + ')';
    $('action-minutes-label').hidden = kind !== 'shelve';
    $('action-comment-label').textContent = t(kind === 'shelve' ? 'reason' : kind === 'comment' ? 'remark' : 'comment');
    const comment = $('action-comment');
    comment.value = '';
    comment.required = kind === 'shelve' || kind === 'comment' || kind === 'incident_urge';
    $('action-error').hidden = true;
    $('action-dialog').showModal();
    comment.focus();
  }

  async function onAction(ev) {
    ev.preventDefault();
    if (!pending) return;
    const { kind, id } = pending;
    const text = $('action-comment').value.trim();
    const err = $('action-error');
    if (!text && (kind === 'shelve' || kind === 'comment' || kind === 'incident_urge')) {
      err.textContent = t(kind === 'shelve' ? 'reasonRequired' : 'remarkRequired');
      err.hidden = false;
      return;
    }
    const body = kind === 'shelve'
      ? { reason: text, minutes: Number($('action-minutes').value) }
      : { comment: text };
    let r;
    try {
      r = await fetch(pathOf(kind, id), {
        method: 'POST', headers: authHeaders({ 'Content-Type': 'application/json' }), body: JSON.stringify(body),
      });
    } catch (e) {
      err.textContent = t('serverError', { error: e.message });
      err.hidden = false;
      return;
    }
    if (r.status === 401) {
      pending = null;
      $('action-dialog').close();
      showLogin(t('sessionEnded'));
      return;
    }
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      err.textContent = msg;
      err.hidden = false;
      return;
    }
    pending = null;
    $('action-dialog').close();
    // The row changes when the stream brings the event; an open timeline
    // of the alarm is read again to show the new entry.
    if ($('timeline-dialog').open && $('timeline-id').textContent === id) {
      if (kind.startsWith('incident_')) openIncidentTimeline(id); else openTimeline(id);
    }
  }

  // --- the disposal record ----------------------------------------------
  let disposing = '';
  function openDisposal(id) {
    const e = incidents.get(id);
    if (!e) return;
    disposing = id;
    $('disposal-incident').textContent = incidentSummary(e.inc);
    $('disposal-officer').value = session.display === session.name ? session.name : session.display + ' (' + session.name + ')';
    for (const k of ['found', 'measures']) $('disposal-' + k).value = '';
    $('disposal-cause').value = '';
    $('disposal-emergency').checked = false;
    $('disposal-error').hidden = true;
    $('disposal-dialog').showModal();
    $('disposal-cause').focus();
  }
  async function onDisposal(ev) {
    ev.preventDefault();
    const err = $('disposal-error');
    const body = {
      cause: $('disposal-cause').value,
      found: $('disposal-found').value.trim(), measures: $('disposal-measures').value.trim(),
      emergency_response: $('disposal-emergency').checked,
    };
    const missing = !body.cause ? 'causeRequired' : !body.found ? 'foundRequired' : !body.measures ? 'measuresRequired' : '';
    if (missing) { err.textContent = t(missing); err.hidden = false; return; }
    let r;
    try {
      r = await fetch('/api/incidents/' + encodeURIComponent(disposing) + '/disposal', {
        method: 'POST', headers: authHeaders({ 'Content-Type': 'application/json' }), body: JSON.stringify(body),
      });
    } catch (e) {
      err.textContent = t('serverError', { error: e.message });
      err.hidden = false;
      return;
    }
    if (r.status === 401) {
      disposing = '';
      $('disposal-dialog').close();
      showLogin(t('sessionEnded'));
      return;
    }
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      err.textContent = msg;
      err.hidden = false;
      return;
    }
    disposing = '';
    $('disposal-dialog').close();
  }

  // --- an incident's timeline ---------------------------------------------
  function incidentDetail(ev) {
    if (ev.type === 'disposal_recorded' && ev.disposal) {
      const d = ev.disposal;
      return t('cause_' + d.cause) + ' — ' + d.found + ' — ' + d.measures + (d.emergency_response ? ' — ' + t('emergencyResponse') : '');
    }
    if (ev.alarm_id) {
      const c = (ev.conditions || []).find((x) => x.alarm_id === ev.alarm_id);
      if (c) return c.condition + ' · ' + ((c.messages && c.messages[lang]) || c.message || c.name || (c.point ? c.point : t('cond_' + c.condition)));
      return ev.alarm_id;
    }
    return '';
  }
  async function openIncidentTimeline(id) {
    const dlg = $('timeline-dialog');
    dlg.dataset.kind = 'incident';
    $('timeline-title').textContent = t('incidentTimeline');
    $('timeline-id').textContent = id;
    $('timeline-comment').hidden = true;
    const rows = $('timeline-rows');
    const err = $('timeline-error');
    err.hidden = true;
    if (!dlg.open) { rows.replaceChildren(); dlg.showModal(); }
    try {
      const r = await fetch('/api/incidents/' + encodeURIComponent(id) + '/timeline', { headers: authHeaders() });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      const frag = document.createDocumentFragment();
      for (const ev of body) {
        const tr = document.createElement('tr');
        tr.dataset.type = ev.type;
        const cells = [fullTime(ev.ts), t('iev_' + ev.type), t('grade_' + ev.grade), t('istate_' + ev.state),
          ev.actor || '', [ev.comment, incidentDetail(ev)].filter(Boolean).join(' — ')];
        for (const text of cells) {
          const td = document.createElement('td');
          td.textContent = text;
          tr.append(td);
        }
        frag.append(tr);
      }
      rows.replaceChildren(frag);
    } catch (e) {
      err.textContent = t('serverError', { error: e.message });
      err.hidden = false;
    }
  }

  // --- timeline -------------------------------------------------------
  async function openTimeline(id) {
    $('timeline-dialog').dataset.kind = 'alarm';
    $('timeline-title').textContent = t('timeline');
    $('timeline-comment').hidden = false;
    $('timeline-id').textContent = id;
    const rows = $('timeline-rows');
    rows.replaceChildren();
    const err = $('timeline-error');
    err.hidden = true;
    if (!$('timeline-dialog').open) $('timeline-dialog').showModal();
    try {
      const r = await fetch('/api/alarms/' + encodeURIComponent(id) + '/timeline', { headers: authHeaders() });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      const frag = document.createDocumentFragment();
      for (const ev of body) {
        const tr = document.createElement('tr');
        tr.dataset.type = ev.type;
        // Sorted as recorded (ts); when it happened is shown beside when
        // it differs by more than a second (late data, 补报).
        let at = fullTime(ev.ts);
        if (ev.occurred_at && Math.abs(Date.parse(ev.occurred_at) - Date.parse(ev.ts)) > 1000) {
          at += ' · ' + t('occurredAt', { time: fullTime(ev.occurred_at) });
        }
        if (ev.late) tr.dataset.late = 'true';
        const cells = [at, t('ev_' + ev.type), t('grade_' + ev.grade), ev.state ? t('state_' + ev.state) : '',
          ev.actor || '', [ev.comment, say(ev)].filter(Boolean).join(' — ')];
        for (const text of cells) {
          const td = document.createElement('td');
          td.textContent = text;
          tr.append(td);
        }
        frag.append(tr);
      }
      rows.replaceChildren(frag);
    } catch (e) {
      err.textContent = t('serverError', { error: e.message });
      err.hidden = false;
    }
  }

  // --- a source's points and a point's trend ---------------------------
  // num shows a reading with at most four significant digits (registers
  // hold float32: 0.9 arrives as 0.8999999761581421).
  function num(v) { return Math.abs(v) >= 10000 ? v.toFixed(0) : String(+v.toPrecision(4)); }

  let trend = { site: '', point: '', range: 3600 };

  async function openSource(key, point) {
    const e = sources.get(key);
    const [site, source] = key.split('/');
    $('source-title').textContent = e ? e.src.name + ' · ' + (sites.get(site) || { site: { name: site } }).site.name : key;
    const rows = $('point-rows');
    rows.replaceChildren();
    $('trend').replaceChildren();
    $('trend-title').textContent = t('pickPoint');
    $('source-error').hidden = true;
    trend = { site, point: '', range: trend.range };
    $('source-dialog').showModal();
    try {
      const r = await fetch('/api/points/latest?site=' + encodeURIComponent(site), { headers: authHeaders() });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      const frag = document.createDocumentFragment();
      for (const p of body.points.filter((p) => p.source === source)) {
        const tr = document.createElement('tr');
        tr.dataset.point = p.point;
        tr.dataset.name = p.name;
        const lim = p.limits || {};
        const limits = ['ll', 'l', 'h', 'hh'].filter((k) => lim[k] !== undefined).map((k) => k.toUpperCase() + ' ' + lim[k]).join(' / ');
        const value = p.value !== undefined ? num(p.value) + ' ' + (p.unit || '') : p.quality ? t('noValue', { quality: p.quality }) : '';
        for (const text of [p.name, value, limits, p.time ? when(p.time) : '']) {
          const td = document.createElement('td');
          td.textContent = text;
          tr.append(td);
        }
        tr.append(inAlarmCell(tr, site, p.point));
        frag.append(tr);
      }
      rows.replaceChildren(frag);
      const first = point ? rows.querySelector('tr[data-point="' + CSS.escape(point) + '"]') : null;
      if (first) showTrend(first);
    } catch (e) {
      $('source-error').textContent = t('serverError', { error: e.message });
      $('source-error').hidden = false;
    }
  }

  // inAlarmCell marks a point that has present alarms (its own, or a vote
  // or count it takes part in) with their worst grade and conditions.
  function inAlarmCell(tr, site, point) {
    const td = document.createElement('td');
    td.className = 'in-alarm';
    let worst = 0;
    const conds = [];
    for (const { a } of alarms.values()) {
      if (a.site !== site || !a.active) continue;
      if (a.point !== point && !(a.points || []).includes(point)) continue;
      worst = Math.max(worst, rank(a.grade));
      conds.push(a.condition);
    }
    if (!conds.length) return td;
    tr.classList.add('alarming');
    tr.dataset.alarm = GRADES[worst];
    const chip = document.createElement('span');
    chip.className = 'chip g-' + GRADES[worst];
    chip.textContent = t('grade_' + GRADES[worst]);
    td.append(chip, document.createTextNode(' ' + conds.join(' ')));
    return td;
  }

  function showTrend(tr) {
    for (const r of $('point-rows').children) r.classList.toggle('selected', r === tr);
    trend.point = tr.dataset.point;
    $('trend-title').textContent = tr.dataset.name;
    loadTrend();
  }

  async function loadTrend() {
    for (const b of document.querySelectorAll('.range')) b.classList.toggle('selected', Number(b.dataset.range) === trend.range);
    if (!trend.point) return;
    const box = $('trend');
    const to = new Date();
    const from = new Date(to.getTime() - trend.range * 1000);
    const want = trend.site + '/' + trend.point + '/' + trend.range;
    box.dataset.loading = want;
    try {
      const r = await fetch('/api/points/' + encodeURIComponent(trend.site) + '/' + encodeURIComponent(trend.point) +
        '/history?from=' + from.toISOString() + '&to=' + to.toISOString(), { headers: authHeaders() });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      if (box.dataset.loading !== want) return; // another point or range was picked meanwhile
      drawTrend(box, body, from, to);
    } catch (e) {
      $('source-error').textContent = t('serverError', { error: e.message });
      $('source-error').hidden = false;
    }
  }

  // drawTrend draws the readings as an SVG line with the alarm limits
  // dashed; a reading without a value breaks the line.
  function drawTrend(box, h, from, to) {
    const NS = 'http://www.w3.org/2000/svg';
    // Drawn at the box's own size, so text is not stretched.
    const W = box.clientWidth || 900;
    const H = box.clientHeight || 260;
    const L = 56;
    const R = 40;
    const T = 24; // room for the unit above the top tick
    const B = 26;
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    const add = (name, attrs, text) => {
      const el = document.createElementNS(NS, name);
      for (const k in attrs) el.setAttribute(k, attrs[k]);
      if (text !== undefined) el.textContent = text;
      svg.append(el);
      return el;
    };
    const samples = (h.samples || []).filter((s) => s.value !== undefined);
    const lim = h.limits || {};
    const limits = ['hh', 'h', 'l', 'll'].filter((k) => lim[k] !== undefined).map((k) => [k, lim[k]]);
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of samples) { lo = Math.min(lo, s.value); hi = Math.max(hi, s.value); }
    for (const [, v] of limits) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!isFinite(lo)) { lo = h.range ? h.range.min : 0; hi = h.range ? h.range.max : 1; }
    // A quantity that cannot be negative (every reading, limit and the
    // range's bottom at or above 0) gets no axis below 0.
    const nonNegative = lo >= 0 && (!h.range || h.range.min === undefined || h.range.min >= 0);
    if (hi === lo) { hi += 1; lo -= 1; }
    const padY = (hi - lo) * 0.08;
    lo -= padY;
    hi += padY;
    if (nonNegative) lo = Math.max(lo, 0);
    // Round ticks: a step of 1, 2, 2.5 or 5 times a power of ten, about
    // four of them, the axis running from one to another.
    const raw = (hi - lo) / 4;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw);
    lo = Math.floor(lo / step + 1e-9) * step;
    hi = Math.ceil(hi / step - 1e-9) * step;
    const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (step / mag === 2.5 ? 1 : 0));
    const nTicks = Math.round((hi - lo) / step);
    const x = (ms) => L + ((ms - from.getTime()) / (to.getTime() - from.getTime())) * (W - L - R);
    const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
    for (let i = 0; i <= nTicks; i++) {
      const v = lo + step * i;
      add('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) });
      add('text', { class: 'tick y-tick', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, v.toFixed(decimals));
    }
    for (let i = 0; i <= 4; i++) {
      const ms = from.getTime() + ((to.getTime() - from.getTime()) * i) / 4;
      const d = new Date(ms);
      add('text', { class: 'tick', x: x(ms), y: H - 8, 'text-anchor': 'middle' },
        trend.range > 6 * 3600 ? pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) : pad(d.getHours()) + ':' + pad(d.getMinutes()));
    }
    add('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B });
    add('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B });
    for (const [k, v] of limits) {
      add('line', { class: 'limit ' + k, x1: L, x2: W - R, y1: y(v), y2: y(v) });
      add('text', { class: 'limit-label', x: W - R + 4, y: y(v) + 4 }, k.toUpperCase());
    }
    let path = '';
    let pen = false;
    for (const s of h.samples || []) {
      if (s.value === undefined) { pen = false; continue; }
      path += (pen ? 'L' : 'M') + x(Date.parse(s.time)).toFixed(1) + ' ' + y(s.value).toFixed(1);
      pen = true;
    }
    if (path) add('path', { class: 'series', d: path });
    else add('text', { class: 'message', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, t('noSamples'));
    if (samples.length < 60) {
      // Few readings (a point just started): mark each one, or a short line is hard to see.
      for (const s of samples) add('circle', { class: 'dot', cx: x(Date.parse(s.time)), cy: y(s.value), r: 2.5 });
    }
    if (h.unit) add('text', { class: 'tick unit', x: L - 6, y: T - 10, 'text-anchor': 'end' }, h.unit);
    box.dataset.yMin = String(lo);
    box.dataset.yStep = String(step);
    box.dataset.samples = String(samples.length);
    box.replaceChildren(svg);
  }

  // --- wiring ---------------------------------------------------------
  function onIncidentClick(ev) {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    const id = b.closest('tr').dataset.id;
    const e = incidents.get(id);
    if (!e) return;
    switch (b.dataset.action) {
      case 'incident_ack': openAction('incident_ack', id); break;
      case 'incident_urge': openAction('incident_urge', id); break;
      case 'incident_disposal': openDisposal(id); break;
      case 'incident_timeline': openIncidentTimeline(id); break;
      case 'incident_trend': {
        const c = (e.inc.conditions || []).find((x) => x.active && x.point) || (e.inc.conditions || []).find((x) => x.point);
        openSource(e.inc.site + '/' + e.inc.source, c ? c.point : undefined);
        break;
      }
    }
  }

  function onRowClick(ev) {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    const id = b.closest('tr').dataset.id;
    const kind = b.dataset.action;
    if (kind === 'timeline') { openTimeline(id); return; }
    if (kind === 'trend') {
      const e = alarms.get(id);
      if (e) openSource(e.a.site + '/' + e.a.source, e.a.point || (e.a.points || [])[0]);
      return;
    }
    openAction(kind, id);
  }

  async function start() {
    try {
      const r = await fetch('/console/i18n.json');
      dict = await r.json();
    } catch (e) {
      // Without the dictionary the keys show; the console still works.
    }
    applyLanguage();
    tickClock();
    setInterval(tickClock, 1000);
    document.addEventListener('click', unlockAudio);
    $('login-form').addEventListener('submit', onLogin);
    $('action-form').addEventListener('submit', onAction);
    $('action-cancel').addEventListener('click', () => { pending = null; $('action-dialog').close(); });
    $('timeline-comment').addEventListener('click', () => openAction('comment', $('timeline-id').textContent));
    for (const b of document.querySelectorAll('dialog .close')) b.addEventListener('click', () => b.closest('dialog').close());
    $('alarm-rows').addEventListener('click', onRowClick);
    $('incident-rows').addEventListener('click', onIncidentClick);
    $('disposal-form').addEventListener('submit', onDisposal);
    $('disposal-cancel').addEventListener('click', () => { disposing = ''; $('disposal-dialog').close(); });
    $('board').addEventListener('click', (ev) => {
      const tile = ev.target.closest('.tile');
      if (tile) openSource(tile.dataset.key);
    });
    $('point-rows').addEventListener('click', (ev) => {
      const tr = ev.target.closest('tr');
      if (tr) showTrend(tr);
    });
    for (const b of document.querySelectorAll('.range')) {
      b.addEventListener('click', () => { trend.range = Number(b.dataset.range); loadTrend(); });
    }
    $('filter').addEventListener('input', refilter);
    $('only-warn').addEventListener('change', refilter);
    $('lang').addEventListener('click', () => {
      lang = lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem('hazardwatch.lang', lang);
      applyLanguage();
    });
    $('mute').addEventListener('click', () => {
      muted = !muted;
      localStorage.setItem('hazardwatch.mute', muted ? '1' : '0');
      $('mute').textContent = muted ? t('soundOff') : t('soundOn');
    });
    $('logout').addEventListener('click', logout);
    // The login dialog is the way in: Escape must not leave a blank console.
    $('login-dialog').addEventListener('cancel', (ev) => ev.preventDefault());

    // A link of the form /#user=…&password=… (the all-in-one demo prints
    // one for its demo officer) logs in at once; the fragment never
    // reaches a server, and is removed from the address bar and history.
    const link = new URLSearchParams(location.hash.slice(1));
    const next = link.get('next') || '';
    if (/^\/[a-z]+$/.test(next) && !link.has('password')) {
      // Logged in already: back at once; else the form, then back (only
      // to a page of this console: one slash and a name).
      whoAmI().then((info) => { if (info) location.replace(next); else showLogin(); }, () => showLogin());
    } else if (link.has('user') && link.has('password')) {
      // Keep only where to go next (the demo's links to /regions and /wall).
      history.replaceState(null, '', location.pathname + (/^\/[a-z]+$/.test(next) ? '#next=' + next : ''));
      $('login-user').value = link.get('user');
      $('login-dialog').showModal();
      logIn(link.get('user'), link.get('password'));
    } else {
      resume();
    }
  }

  start();
})();
