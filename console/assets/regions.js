// HazardWatch regions overview (/regions) and wall view (/wall): the risk
// map (风险分布图) of the caller's area, drawn from bundled county
// boundaries with no tile server, and the roll-up by county, enterprise,
// source and point. Plain JavaScript, nothing from elsewhere.
//
// Data: GET /api/regions (the roll-up tree of the caller's scope), GET
// /api/sources (every source in scope with its location and grade), and
// /console/geo/<city>.geojson. Both pages refresh every few seconds; the
// wall rotates through the counties.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const GRADES = ['none', 'blue', 'yellow', 'orange', 'red'];
  const rank = (g) => Math.max(0, GRADES.indexOf(g || 'none'));
  const wall = document.body.classList.contains('wall-page');
  const REFRESH_MS = 5000;
  const ROTATE_MS = 15000;

  let dict = { zh: {}, en: {} };
  let lang = localStorage.getItem('hazardwatch.lang') === 'en' ? 'en' : 'zh';
  const t = (key, vars) => {
    let s = (dict[lang] && dict[lang][key]) || dict.zh[key] || key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  };
  function applyLanguage() {
    document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
    for (const el of document.querySelectorAll('[data-r]')) el.textContent = t(el.dataset.r);
    document.title = t(wall ? 'wallTitle' : 'title');
    legend();
    if (tree) render();
  }

  let tree = null; // /api/regions
  let sources = []; // /api/sources
  let geo = null; // the city's county boundaries
  let geoCity = '';
  let tiles = ''; // the deployment's tile URL template (GET /api/map), if any
  const open = new Set(); // keys of expanded roll-up rows
  let focus = ''; // county code in focus (wall rotation or a click)
  let rotation = 0;

  const key = (n) => n.level + ':' + (n.site || '') + ':' + n.code;

  async function getJSON(url) {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (r.status === 401) {
      // Log in on the console, then come back here.
      location.href = '/#next=' + encodeURIComponent(location.pathname);
      throw new Error('not logged in');
    }
    if (!r.ok) throw new Error(url + ': ' + r.status);
    return r.json();
  }

  function cityOf(n) {
    if (!n) return '';
    if (n.level === 'city') return n.code.slice(0, 4);
    if (n.level === 'county') return n.code.slice(0, 4);
    for (const c of n.children || []) {
      const code = cityOf(c);
      if (code) return code;
    }
    return '';
  }

  function counties(n, out = []) {
    if (n.level === 'county') out.push(n);
    for (const c of n.children || []) if (c.level !== 'enterprise') counties(c, out);
    return out;
  }

  async function refresh() {
    try {
      [tree, sources] = await Promise.all([getJSON('/api/regions'), getJSON('/api/sources')]);
      const city = cityOf(tree);
      if (city && city !== geoCity) {
        geoCity = city;
        try {
          geo = await getJSON('/console/geo/' + city + '.geojson');
        } catch (e) {
          geo = null; // no bundled boundaries for this city: sources only
        }
      }
      $('banner').hidden = true;
      $('updated').textContent = t('updated', { time: new Date().toLocaleTimeString(lang === 'en' ? 'en-GB' : 'zh-CN', { hour12: false }) });
      if (open.size === 0) expandDefault(tree);
      render();
    } catch (e) {
      $('banner').textContent = t('loadFailed', { error: e.message });
      $('banner').hidden = false;
    }
  }

  // Expanded by default: down to the counties, and a county's enterprises
  // when the caller's scope is one county.
  function expandDefault(n) {
    if (['installation', 'province', 'city'].includes(n.level) || (n === tree && n.level === 'county')) open.add(key(n));
    for (const c of n.children || []) expandDefault(c);
  }

  function render() {
    drawMap();
    drawRollup();
    if (wall) drawWarnings();
  }

  // --- map --------------------------------------------------------------
  const SVGNS = 'http://www.w3.org/2000/svg';
  const svgEl = (name, attrs) => {
    const el = document.createElementNS(SVGNS, name);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    return el;
  };

  function rings(geometry) {
    if (geometry.type === 'Polygon') return geometry.coordinates;
    if (geometry.type === 'MultiPolygon') return geometry.coordinates.flat();
    return [];
  }

  function drawMap() {
    const box = $('map');
    const located = sources.filter((s) => s.location);
    const pts = [];
    if (geo) for (const f of geo.features) for (const r of rings(f.geometry)) for (const p of r) pts.push(p);
    for (const s of located) pts.push([s.location.lon, s.location.lat]);
    box.textContent = '';
    if (pts.length === 0) {
      box.textContent = t('noLocations');
      return;
    }
    // Web Mercator, as tile servers draw: the world is 0..1 both ways.
    const merc = ([lon, lat]) => [(lon + 180) / 360, (1 - Math.log(Math.tan(Math.PI / 4 + lat * Math.PI / 360)) / Math.PI) / 2];
    let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const p of pts) {
      const [x, y] = merc(p);
      minX = Math.min(minX, x); maxX = Math.max(maxX, x);
      minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
    // The zoom at which the area is about 1000 px wide; the drawing is in
    // that zoom's pixels, so tiles fall where they belong.
    const span = Math.max(maxX - minX, maxY - minY, 1e-6);
    const z = Math.max(1, Math.min(18, Math.floor(Math.log2(1000 / (256 * span)))));
    const scale = 256 * Math.pow(2, z);
    const pad = 20;
    const W = (maxX - minX) * scale + 2 * pad, H = (maxY - minY) * scale + 2 * pad;
    const proj = (lon, lat) => { const [x, y] = merc([lon, lat]); return [(x - minX) * scale + pad, (y - minY) * scale + pad]; };
    const px = (lon, lat) => proj(lon, lat)[0];
    const py = (lon, lat) => proj(lon, lat)[1];
    const svg = svgEl('svg', { viewBox: '0 0 ' + W.toFixed(1) + ' ' + H.toFixed(1), preserveAspectRatio: 'xMidYMid meet' });
    if (tiles) {
      // A deployment's own tile server under the boundaries (optional).
      const n = Math.pow(2, z);
      for (let tx = Math.floor(minX * n); tx <= Math.floor(maxX * n); tx++) {
        for (let ty = Math.floor(minY * n); ty <= Math.floor(maxY * n); ty++) {
          const img = svgEl('image', { x: (tx * 256 - minX * scale + pad).toFixed(1), y: (ty * 256 - minY * scale + pad).toFixed(1), width: 256, height: 256, class: 'tile' });
          img.setAttribute('href', tiles.replace('{z}', z).replace('{x}', tx).replace('{y}', ty));
          svg.appendChild(img);
        }
      }
    }
    const byCode = new Map(counties(tree).map((c) => [c.code, c]));
    if (geo) {
      for (const f of geo.features) {
        const node = byCode.get(f.properties.code);
        const d = rings(f.geometry).map((r) => 'M' + r.map(([x, y]) => px(x, y).toFixed(1) + ',' + py(x, y).toFixed(1)).join('L') + 'Z').join('');
        const path = svgEl('path', { d, class: 'county g-' + (node ? node.grade : 'none') + (focus === f.properties.code ? ' focus' : ''), 'data-code': f.properties.code });
        const title = svgEl('title');
        title.textContent = f.properties.name + (node ? ' — ' + t('sourcesN', { n: node.sources }) : '');
        path.appendChild(title);
        path.addEventListener('click', () => { focus = f.properties.code; open.add('county::' + focus); render(); });
        svg.appendChild(path);
      }
      for (const f of geo.features) {
        let [sx, sy, n] = [0, 0, 0];
        for (const r of rings(f.geometry)) for (const [x, y] of r) { sx += x; sy += y; n++; }
        if (!n) continue;
        const label = svgEl('text', { x: px(sx / n, sy / n).toFixed(1), y: py(sx / n, sy / n).toFixed(1), class: 'county-label' });
        label.textContent = lang === 'en' ? f.properties.code : f.properties.name;
        svg.appendChild(label);
      }
    }
    for (const s of [...located].sort((a, b) => rank(a.grade) - rank(b.grade))) {
      const c = svgEl('circle', { cx: px(s.location.lon, s.location.lat).toFixed(1), cy: py(s.location.lon, s.location.lat).toFixed(1), r: 7 + 2 * rank(s.grade),
        class: 'source g-' + s.grade, 'data-source': s.site + '/' + s.source });
      const title = svgEl('title');
      title.textContent = s.site_name + ' · ' + s.name + ' — ' + t('grade_' + s.grade);
      c.appendChild(title);
      c.addEventListener('click', () => { location.href = '/#source=' + encodeURIComponent(s.site + '/' + s.source); });
      svg.appendChild(c);
    }
    box.appendChild(svg);
  }

  function legend() {
    const el = $('legend');
    if (!el) return;
    el.textContent = '';
    for (const g of ['red', 'orange', 'yellow', 'blue', 'none']) {
      const s = document.createElement('span');
      const dot = document.createElement('i');
      dot.style.background = 'var(--' + (g === 'none' ? 'normal' : g) + ')';
      s.append(dot, t('grade_' + g));
      el.appendChild(s);
    }
  }

  // --- roll-up ------------------------------------------------------------
  function cell(text, cls) {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function rowOf(n, depth) {
    const tr = document.createElement('tr');
    tr.className = 'level-' + n.level + (n.level === 'county' && n.code === focus ? ' focus' : '');
    tr.dataset.key = key(n);
    const name = document.createElement('td');
    const badge = document.createElement('span');
    badge.className = 'grade g-' + (n.grade || 'none');
    badge.textContent = t('grade_' + (n.grade || 'none'));
    if (n.level !== 'point') name.appendChild(badge);
    name.append(n.name || t('installation'));
    if (n.level === 'point') name.append(' — ' + t(n.online ? 'online' : 'offline'));
    tr.appendChild(name);
    if ((n.children || []).length) {
      tr.dataset.open = open.has(key(n)) ? '1' : '0';
      name.addEventListener('click', () => {
        open.has(key(n)) ? open.delete(key(n)) : open.add(key(n));
        if (n.level === 'county') focus = n.code;
        render();
      });
    } else if (n.level === 'source') {
      name.style.cursor = 'pointer';
      name.addEventListener('click', () => { location.href = '/#source=' + encodeURIComponent(n.site + '/' + n.code); });
    }
    if (n.level === 'point') {
      for (let i = 0; i < 8; i++) tr.appendChild(cell(''));
    } else {
      const by = n.by_grade || {};
      tr.append(cell(n.sources), cell(by.red || ''), cell(by.orange || ''), cell(by.yellow || ''), cell(by.blue || ''),
        cell(n.incidents.open || ''), cell(n.incidents.unacked || '', n.incidents.unacked ? 'low' : ''),
        cell(n.incidents.overdue || '', n.incidents.overdue ? 'low' : ''));
    }
    const rate = n.points ? (100 * n.online_rate).toFixed(1) + ' %' : '—';
    // The national platform holds itself to 99.5 % online.
    tr.appendChild(cell(n.level === 'point' ? '' : rate, n.points && n.online_rate < 0.995 ? 'low' : ''));
    return tr;
  }

  function drawRollup() {
    const body = $('rollup-rows');
    body.textContent = '';
    const walk = (n, depth) => {
      body.appendChild(rowOf(n, depth));
      if (!open.has(key(n)) && n !== tree) return;
      for (const c of n.children || []) walk(c, depth + 1);
    };
    if (wall && focus) {
      // The wall shows the area's total and the county in focus.
      const c = counties(tree).find((x) => x.code === focus);
      body.appendChild(rowOf(tree, 0));
      if (c) {
        open.add(key(c));
        walk(c, 1);
      }
    } else {
      walk(tree, 0);
    }
    const title = $('rollup-title');
    if (title) title.textContent = t('rollupOf', { area: tree.name || t('installation') });
  }

  function drawWarnings() {
    const ul = $('warnings');
    ul.textContent = '';
    const warn = sources.filter((s) => s.grade && s.grade !== 'none').sort((a, b) => rank(b.grade) - rank(a.grade));
    for (const s of warn) {
      const li = document.createElement('li');
      const badge = document.createElement('span');
      badge.className = 'grade g-' + s.grade;
      badge.textContent = t('grade_' + s.grade);
      li.append(badge, ' ' + (s.region_name || '') + ' · ' + s.site_name + ' · ' + s.name);
      if (s.incidents && s.incidents.unacked) li.append(' — ' + t('unackedN', { n: s.incidents.unacked }));
      ul.appendChild(li);
    }
    $('no-warnings').hidden = warn.length > 0;
  }

  function rotate() {
    const list = counties(tree || { children: [] }).filter((c) => c.sources > 0);
    if (!list.length) return;
    // Counties in warning first: the room sees the worst area most.
    list.sort((a, b) => rank(b.grade) - rank(a.grade) || a.code.localeCompare(b.code));
    focus = list[rotation++ % list.length].code;
    const c = list.find((x) => x.code === focus);
    $('focus').textContent = c.name + ' · ' + t('grade_' + c.grade);
    render();
  }

  async function start() {
    try {
      dict = await (await fetch('/console/regions-i18n.json')).json();
    } catch (e) { /* labels fall back to their keys */ }
    const btn = $('lang');
    if (btn) btn.addEventListener('click', () => {
      lang = lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem('hazardwatch.lang', lang);
      applyLanguage();
    });
    applyLanguage();
    try {
      tiles = (await getJSON('/api/map')).tiles || '';
    } catch (e) { /* no tiles: the boundaries alone */ }
    await refresh();
    setInterval(refresh, REFRESH_MS);
    if (wall) {
      rotate();
      setInterval(rotate, ROTATE_MS);
    }
  }
  start();
})();
