// apitap live view. Reads the agent's JSON API every 2 s with the token kept in this tab's
// session storage (never in a URL, a cookie or the DOM). Everything from the API is written
// with textContent: endpoint paths and client names come from network traffic.
'use strict';

(function () {
  const TOKEN_KEY = 'apitap.token';
  const EVERY_MS = 2000;
  const WINDOW = 900;
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const state = {
    endpointSort: 'count',
    clientSort: 'count',
    service: '',
    filter: '',
    series: null, // {end: second, byKey: Map(key -> {requests, errors, p95})}
    last: null, // the latest bodies, re-rendered when the filter or service changes
    timer: 0,
    running: false,
    inflight: false,
    downSince: 0,
  };

  // ---- token ---------------------------------------------------------------------------

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }
  function setToken(t) {
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* private mode: ask again */ }
  }
  function forgetToken() {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing kept */ }
  }

  class AuthError extends Error {
    constructor(status) { super('HTTP ' + status); this.status = status; }
  }
  class Unreachable extends Error {}

  async function api(path) {
    let res;
    try {
      res = await fetch(path, {
        headers: { Authorization: 'Bearer ' + token(), Accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
    } catch (e) {
      throw new Unreachable(e && e.message ? e.message : String(e));
    }
    if (res.status === 401 || res.status === 403) throw new AuthError(res.status);
    if (!res.ok) {
      let detail = '';
      try { detail = (await res.json()).error || ''; } catch (e) { /* not JSON */ }
      throw new Error(path.split('?')[0] + ': HTTP ' + res.status + (detail ? ' (' + detail + ')' : ''));
    }
    return res.json();
  }

  // ---- views -----------------------------------------------------------------------------

  function show(view) {
    $('signin').hidden = view !== 'signin';
    $('down').hidden = view !== 'down';
    $('dash').hidden = view !== 'dash';
    $('signout').hidden = view === 'signin';
  }

  function setStatus(kind, text) {
    const s = $('status');
    s.className = 'status ' + kind;
    $('status-text').textContent = text;
  }

  function signIn(reason, refused) {
    stop();
    forgetToken();
    state.series = null;
    state.last = null;
    const r = $('signin-reason');
    r.textContent = reason;
    r.className = refused ? 'refused' : '';
    setStatus('auth', 'signed out');
    show('signin');
    $('token').focus();
  }

  // ---- formatting ------------------------------------------------------------------------

  const int = (n) => Math.round(n).toLocaleString('en-US');
  function pct(r) {
    if (!r) return '0%';
    const p = r * 100;
    return (p < 0.1 ? p.toFixed(3) : p < 10 ? p.toFixed(2) : p.toFixed(1)) + '%';
  }
  function ms(v) {
    if (v === null || v === undefined || !isFinite(v) || v <= 0) return '–';
    if (v < 1) return Math.round(v * 1000) + ' µs';
    if (v < 10) return v.toFixed(2) + ' ms';
    if (v < 1000) return v.toFixed(1) + ' ms';
    return (v / 1000).toFixed(2) + ' s';
  }
  function rate(v) { return v < 10 ? v.toFixed(1) : int(v); }
  function clock(d) { return d.toLocaleTimeString('en-GB', { hour12: false }); }
  const key = (ns, svc) => (ns ? ns + '/' : '') + svc;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- sparklines ------------------------------------------------------------------------

  // A path over `values` (null leaves a gap) scaled to the box 0..WINDOW x 0..100.
  function spark(values, cls, peakText) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + WINDOW + ' 100');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    let max = 0;
    for (const v of values) if (v !== null && v > max) max = v;
    const title = document.createElementNS(SVG, 'title');
    title.textContent = 'last 15 min, peak ' + peakText(max);
    svg.appendChild(title);
    const base = document.createElementNS(SVG, 'path');
    base.setAttribute('class', 'base');
    base.setAttribute('d', 'M0 99.5 H' + WINDOW);
    svg.appendChild(base);
    let d = '';
    const x0 = WINDOW - values.length;
    values.forEach((v, i) => {
      if (v === null) return;
      const y = (max > 0 ? 98 - (v / max) * 94 : 98).toFixed(1);
      const joined = i > 0 && values[i - 1] !== null;
      // A second between gaps is drawn as a short dash so it stays visible.
      const alone = !joined && (i + 1 >= values.length || values[i + 1] === null);
      d += (joined ? 'L' : 'M') + (x0 + i) + ' ' + y + (alone ? 'h4' : '');
    });
    const line = document.createElementNS(SVG, 'path');
    line.setAttribute('class', cls);
    line.setAttribute('d', d || 'M0 98');
    svg.appendChild(line);
    return svg;
  }

  // ---- series (kept here, refreshed incrementally) ---------------------------------------

  function mergeSeries(body) {
    let s = state.series;
    const shift = s ? body.end_s - s.end : WINDOW;
    if (!s || shift < 0 || shift >= WINDOW) {
      s = state.series = { end: body.end_s, byKey: new Map() };
    } else if (shift > 0) {
      for (const v of s.byKey.values()) {
        for (const a of [v.requests, v.errors, v.p95]) {
          a.splice(0, shift);
          for (let i = 0; i < shift; i++) a.push(a === v.p95 ? null : 0);
        }
      }
      s.end = body.end_s;
    }
    for (const svc of body.services) {
      const k = key(svc.namespace, svc.service);
      let v = s.byKey.get(k);
      if (!v) {
        v = { requests: new Array(WINDOW).fill(0), errors: new Array(WINDOW).fill(0), p95: new Array(WINDOW).fill(null) };
        s.byKey.set(k, v);
      }
      const n = svc.requests.length;
      for (let i = 0; i < n; i++) {
        const at = WINDOW - n + i;
        v.requests[at] = svc.requests[i];
        v.errors[at] = svc.errors[i];
        v.p95[at] = svc.p95_ms[i];
      }
    }
  }

  // ---- panes -----------------------------------------------------------------------------

  function renderServices(body) {
    const cards = $('service-cards');
    cards.textContent = '';
    const rows = body.services;
    $('services-empty').hidden = rows.length > 0;
    const select = $('service-filter');
    const keys = rows.map((svc) => key(svc.namespace, svc.service));
    if (select.dataset.keys !== keys.join('\n')) {
      // Rebuilt only when the services change, so an open drop-down stays open.
      const keep = select.value;
      while (select.options.length > 1) select.remove(1);
      for (const k of keys) select.add(new Option(k, k));
      select.dataset.keys = keys.join('\n');
      select.value = keys.includes(keep) ? keep : '';
    }
    for (const svc of rows) {
      const k = key(svc.namespace, svc.service);
      const series = state.series && state.series.byKey.get(k);
      // Complete seconds only: the last point is the current, partial second.
      const req = series ? series.requests.slice(0, WINDOW - 1) : [];
      const err = series ? series.errors.slice(0, WINDOW - 1) : [];
      const lat = series ? series.p95.slice(0, WINDOW - 1) : [];
      const last10 = req.slice(-10).reduce((a, b) => a + b, 0) / 10;
      const errRate = req.map((r, i) => (r > 0 ? err[i] / r : null));

      const card = el('div', 'card' + (state.service === k ? ' selected' : ''));
      card.dataset.service = k;
      const name = el('div', 'name');
      if (svc.namespace) name.appendChild(el('span', 'ns', svc.namespace + '/'));
      name.appendChild(document.createTextNode(svc.service));
      card.appendChild(name);
      const metric = (label, value, cls, values, peak, field) => {
        const m = el('div', 'metric');
        const left = el('div');
        left.appendChild(el('div', 'label', label));
        const v = el('div', 'value ' + field, value);
        left.appendChild(v);
        m.appendChild(left);
        m.appendChild(spark(values, cls, peak));
        card.appendChild(m);
      };
      metric('req/s', rate(last10), 'spark-req', req, (x) => rate(x) + '/s', 'rps');
      metric('errors 5m', pct(svc.error_rate_5m), 'spark-err', errRate, pct, 'error-rate');
      metric('p95 5m', ms(svc.p95_5m_ms), 'spark-lat', lat, ms, 'p95');
      card.addEventListener('click', () => {
        state.service = state.service === k ? '' : k;
        $('service-filter').value = state.service;
        render();
      });
      cards.appendChild(card);
    }
    if (!keys.includes(state.service)) state.service = '';
    select.value = state.service;
  }

  function matches(text) {
    return !state.filter || text.toLowerCase().includes(state.filter);
  }

  function markSorted(table, sortKey) {
    for (const th of table.querySelectorAll('th.sortable')) {
      th.classList.toggle('sorted', th.dataset.sort === sortKey);
    }
  }

  function renderEndpoints(body) {
    const table = $('endpoints-table');
    markSorted(table, state.endpointSort);
    const tbody = table.tBodies[0];
    tbody.textContent = '';
    let shown = 0;
    for (const e of body.endpoints) {
      const svc = key(e.namespace, e.service);
      if (state.service && svc !== state.service) continue;
      if (!matches(svc + ' ' + e.method + ' ' + e.endpoint)) continue;
      const tr = el('tr');
      tr.dataset.service = svc;
      tr.dataset.method = e.method;
      tr.dataset.endpoint = e.endpoint;
      tr.appendChild(el('td', 'service', svc));
      tr.appendChild(el('td', 'method', e.method));
      tr.appendChild(el('td', 'endpoint', e.endpoint));
      tr.appendChild(el('td', 'num count', int(e.count)));
      const errCls = e.error_rate >= 0.1 ? ' bad' : e.error_rate >= 0.05 ? ' warn' : '';
      tr.appendChild(el('td', 'num error-rate' + errCls, pct(e.error_rate)));
      tr.appendChild(el('td', 'num p50', ms(e.p50_latency_ms)));
      tr.appendChild(el('td', 'num p95', ms(e.p95_latency_ms)));
      tr.appendChild(el('td', 'num p99', ms(e.p99_latency_ms)));
      tbody.appendChild(tr);
      shown++;
    }
    $('endpoints-empty').hidden = shown > 0;
  }

  function renderClients(body) {
    const table = $('clients-table');
    markSorted(table, state.clientSort);
    const tbody = table.tBodies[0];
    tbody.textContent = '';
    let shown = 0;
    for (const c of body.clients) {
      if (!matches(c.client)) continue;
      const tr = el('tr');
      tr.dataset.client = c.client;
      tr.appendChild(el('td', 'client', c.client));
      tr.appendChild(el('td', 'num count', int(c.count)));
      tr.appendChild(el('td', 'num rate-limited' + (c.rate_limited > 0 ? ' warn' : ''), int(c.rate_limited)));
      tr.appendChild(el('td', 'num auth-failures' + (c.auth_failures > 0 ? ' warn' : ''), int(c.auth_failures)));
      tr.appendChild(el('td', 'num error-rate', pct(c.error_rate)));
      tbody.appendChild(tr);
      shown++;
    }
    $('clients-empty').hidden = shown > 0;
  }

  function renderAlerts(body) {
    const lists = { firing: $('alerts-firing'), pending: $('alerts-pending'), resolved: $('alerts-resolved') };
    for (const l of Object.values(lists)) l.textContent = '';
    for (const a of body.alerts) {
      const list = lists[a.state];
      if (!list) continue;
      const li = el('li');
      li.appendChild(el('span', 'sev ' + a.severity, a.severity));
      li.appendChild(el('strong', null, a.name));
      li.appendChild(document.createTextNode(' ' + a.summary));
      const when = a.state === 'resolved' ? a.ended_at : a.state === 'firing' ? a.fired_at : a.started_at;
      if (when) li.appendChild(el('span', 'when', a.state + ' ' + clock(new Date(when))));
      list.appendChild(li);
    }
    for (const l of Object.values(lists)) {
      if (!l.children.length) l.appendChild(el('li', 'none', 'none'));
    }
  }

  function renderCapture(body) {
    const dl = $('capture-list');
    dl.textContent = '';
    const row = (label, value, bad, id) => {
      const dt = el('dt', null, label);
      const dd = el('dd', bad ? 'bad' : null, value);
      if (id) dd.dataset.field = id;
      dl.appendChild(dt);
      dl.appendChild(dd);
    };
    const ifaces = body.interfaces && body.interfaces.length ? body.interfaces.join(', ') : 'none';
    row('interfaces', ifaces + ' (' + int(body.programs_attached) + ' programs)', body.programs_attached === 0, 'interfaces');
    row('events lost', int(body.events_lost), body.events_lost > 0, 'events_lost');
    row('events dropped', int(body.events_dropped), body.events_dropped > 0, 'events_dropped');
    row('reassembly gaps', int(body.reassembly_gaps) + ' (' + int(body.gap_bytes) + ' bytes)', body.reassembly_gaps > 0, 'reassembly_gaps');
    const reasons = Object.entries(body.parse_errors || {}).filter(([, n]) => n > 0)
      .map(([r, n]) => r + ' ' + int(n)).join(', ');
    row('parse errors', int(body.parse_errors_total) + (reasons ? ' (' + reasons + ')' : ''), body.parse_errors_total > 0, 'parse_errors');
    row('capture errors', int(body.capture_errors), body.capture_errors > 0, 'capture_errors');
    row('flows tracked', int(body.flows_tracked), false, 'flows_tracked');
    row('segments', int(body.segments), false, 'segments');
    row('transactions', int(body.transactions), false, 'transactions');
  }

  // ---- loop ------------------------------------------------------------------------------

  function render() {
    const b = state.last;
    if (!b) return;
    renderServices(b.services);
    renderEndpoints(b.endpoints);
    renderClients(b.clients);
    renderAlerts(b.alerts);
    renderCapture(b.capture);
  }

  async function refresh() {
    if (!token()) { signIn('The agent\'s API needs its token.', false); return; }
    const series = state.series ? '/api/v1/series?since=' + Math.max(0, state.series.end - 6) : '/api/v1/series';
    try {
      const [services, seriesBody, endpoints, clients, alerts, capture] = await Promise.all([
        api('/api/v1/services'),
        api(series),
        api('/api/v1/endpoints?top=100&sort=' + state.endpointSort),
        api('/api/v1/clients?top=100&sort=' + state.clientSort),
        api('/api/v1/alerts'),
        api('/api/v1/capture'),
      ]);
      mergeSeries(seriesBody);
      state.last = { services, endpoints, clients, alerts, capture };
      render();
      state.downSince = 0;
      document.body.dataset.snapshot = endpoints.timestamp;
      setStatus('live', 'live · updated ' + clock(new Date()));
      show('dash');
    } catch (e) {
      if (e instanceof AuthError) {
        signIn(e.status === 403 ? 'The agent refused that token (HTTP 403). Enter the right one.'
                                : 'The agent asks for a token (HTTP 401).', e.status === 403);
        return;
      }
      if (e instanceof Unreachable) {
        if (!state.downSince) state.downSince = Date.now();
        $('down-reason').textContent = 'No answer from ' + location.origin + ' since ' +
          clock(new Date(state.downSince)) + ' (' + e.message + ').';
        setStatus('down', 'agent unreachable');
        show('down');
      } else {
        setStatus('stale', String(e.message || e));
      }
    }
  }

  // One request round at a time; the next one 2 s after the last ended, none while hidden.
  async function loop() {
    clearTimeout(state.timer);
    state.timer = 0;
    if (!state.running || state.inflight) return;
    state.inflight = true;
    try { await refresh(); } finally { state.inflight = false; }
    if (state.running && !document.hidden && !state.timer) state.timer = setTimeout(loop, EVERY_MS);
  }

  function start() {
    state.running = true;
    loop();
  }

  function stop() {
    state.running = false;
    clearTimeout(state.timer);
    state.timer = 0;
  }

  // ---- wiring ----------------------------------------------------------------------------

  function sortable(tableId, field) {
    for (const th of $(tableId).querySelectorAll('th.sortable')) {
      const pick = () => { state[field] = th.dataset.sort; if (state.running) loop(); };
      th.addEventListener('click', pick);
      th.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pick(); } });
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = $('token');
      const t = input.value.trim();
      input.value = '';
      if (!t) return;
      setToken(t);
      setStatus('', 'connecting…');
      start();
    });
    $('signout').addEventListener('click', () => signIn('Signed out. The token was removed from this tab.', false));
    $('filter').addEventListener('input', (ev) => { state.filter = ev.target.value.trim().toLowerCase(); render(); });
    $('service-filter').addEventListener('change', (ev) => { state.service = ev.target.value; render(); });
    sortable('endpoints-table', 'endpointSort');
    sortable('clients-table', 'clientSort');
    document.addEventListener('visibilitychange', () => { if (!document.hidden && state.running) loop(); });
    if (token()) start(); else signIn('The agent\'s API needs its token.', false);
  });
})();
