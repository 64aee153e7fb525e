// evrouted's console: polls GET v1/status and v1/sinks, keeps the last 15 minutes of samples in
// the page, and draws them. Everything it shows of the daemon goes in as text (textContent), never
// as markup: sink descriptions, dead-letter reasons and event bodies come from elsewhere.
'use strict';

(() => {
  const POLL_MS = 2000;
  const KEEP_MS = 15 * 60 * 1000;
  const SERIES = ['in', 'delivered', 'failed', 'retried'];
  const TOKEN_KEY = 'evroute.token';
  const PAGE_SIZE = 25;

  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat('en');
  const rateFmt = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

  // ---- state -------------------------------------------------------------------------------
  const state = {
    status: null,          // the last GET v1/status
    statusAt: 0,           // Date.now() when it came
    sinks: [],             // the last GET v1/sinks' "sinks"
    samples: [],           // [{t, accepted, sinks: Map(name -> [in, delivered, failed, retried])}]
    cards: new Map(),      // name -> card
    route: { view: 'overview' },
    dl: { sink: null, page: 0, total: 0, entries: [], selected: new Set(), open: new Set() },
    windowSeconds: 60,
  };

  // ---- small helpers -----------------------------------------------------------------------
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role') e.setAttribute(k, v);
        else e[k] = v;
      }
    }
    for (const c of children) e.append(c);
    return e;
  }

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? fmt.format(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24;
    const m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function ms(n) {
    if (n === 0) return 'none';
    if (n % 3600000 === 0) return `${n / 3600000}h`;
    if (n % 60000 === 0) return `${n / 60000}m`;
    if (n % 1000 === 0) return `${n / 1000}s`;
    return `${n}ms`;
  }

  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

  function stateWord(s) { return s.state === 'open' || s.state === 'disabled' || s.state === 'closed' ? s.state : 'unknown'; }

  // The queue's fill: {used, max, text}; max 0 when the queue has no bound to draw against.
  function queueFill(s) {
    const q = s.queue || {};
    if (q.type === 'memory') {
      return { used: q.pending, max: q.capacity, text: `${fmt.format(q.pending)} of ${fmt.format(q.capacity)} events queued` };
    }
    if (q.type === 'disk') {
      return { used: q.disk_bytes, max: q.max_bytes, text: `${fmt.format(q.pending)} events queued, ${bytes(q.disk_bytes)} of ${bytes(q.max_bytes)} on disk` };
    }
    if (q.type === 'jetstream') {
      return { used: q.pending, max: 0, text: `${fmt.format(q.pending)} in JetStream, ${fmt.format(q.ack_pending)} being delivered` };
    }
    return { used: q.pending || 0, max: 0, text: `${fmt.format(q.pending || 0)} queued` };
  }

  function setMeter(meter, used, max, label) {
    meter.classList.toggle('unbounded', !max);
    const pct = max ? Math.min(100, (used / max) * 100) : 0;
    meter.querySelector('.fill').style.width = pct.toFixed(1) + '%';
    meter.classList.toggle('high', pct >= 80 && pct < 100);
    meter.classList.toggle('full', pct >= 100);
    meter.setAttribute('aria-valuemax', String(max || 0));
    meter.setAttribute('aria-valuenow', String(used || 0));
    meter.setAttribute('aria-valuetext', label);
    return pct;
  }

  // ---- HTTP --------------------------------------------------------------------------------
  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  async function call(method, path, body) {
    const headers = {};
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit',
    });
    let json = null;
    try { json = await res.json(); } catch (_) { /* not JSON: reported by status below */ }
    return { status: res.status, ok: res.ok, json };
  }

  function needsToken() { return !!(state.status && state.status.auth && state.status.auth.admin_needs_token); }

  // Asks for the admin token in the dialog. Resolves true when one was given.
  function askToken(why) {
    const dialog = $('token-dialog');
    const input = $('token-input');
    const error = $('token-error');
    error.hidden = !why;
    error.textContent = why || '';
    input.value = '';
    return new Promise((resolve) => {
      const form = dialog.querySelector('form');
      const done = (given) => {
        form.removeEventListener('submit', onSubmit);
        dialog.removeEventListener('cancel', onCancel);
        cancelButton.removeEventListener('click', onCancel);
        dialog.close();
        resolve(given);
      };
      const onSubmit = (ev) => {
        ev.preventDefault();
        const v = input.value.trim();
        if (!v) return;
        sessionStorage.setItem(TOKEN_KEY, v);
        done(true);
      };
      const onCancel = (ev) => { ev.preventDefault(); done(false); };
      const cancelButton = form.querySelector('button[value="cancel"]');
      form.addEventListener('submit', onSubmit);
      dialog.addEventListener('cancel', onCancel);
      cancelButton.addEventListener('click', onCancel);
      dialog.showModal();
      input.focus();
    });
  }

  // An admin request: asks for the token first when one is needed and none is kept, and again
  // when the one kept is refused. Resolves to the answer, or null when the user cancelled.
  async function adminCall(method, path, body) {
    if (needsToken() && !token() && !(await askToken(''))) return null;
    for (;;) {
      const r = await call(method, path, body);
      if (r.status !== 401) return r;
      sessionStorage.removeItem(TOKEN_KEY);
      if (!(await askToken('evrouted refused that token: ' + ((r.json && r.json.error) || 'unauthorized')))) return null;
    }
  }

  // ---- samples and rates -------------------------------------------------------------------
  function record(now) {
    const sinks = new Map();
    for (const s of state.sinks) {
      const c = s.counters || {};
      sinks.set(s.name, [c.events_in || 0, c.delivered || 0, c.failed || 0, c.retried || 0]);
    }
    state.samples.push({ t: now, accepted: state.status ? state.status.events_accepted : 0, sinks });
    while (state.samples.length > 2 && now - state.samples[0].t > KEEP_MS + POLL_MS) state.samples.shift();
  }

  // Per-second rates between consecutive samples in the window: [{t, values: [...]}]. `pick`
  // turns a sample into the numbers to differentiate (null: not there).
  function rates(pick, seconds) {
    const out = [];
    const from = Date.now() - seconds * 1000;
    const samples = state.samples;
    for (let i = 1; i < samples.length; i++) {
      if (samples[i].t < from) continue;
      const a = pick(samples[i - 1]), b = pick(samples[i]);
      if (!a || !b) continue;
      const dt = (samples[i].t - samples[i - 1].t) / 1000;
      if (dt <= 0) continue;
      out.push({ t: samples[i].t, values: b.map((v, k) => Math.max(0, v - a[k]) / dt) });
    }
    return out;
  }

  // The mean rate of each series over the last `seconds` (the card's "/s" column).
  function recentRate(name, seconds) {
    const samples = state.samples;
    if (samples.length < 2) return null;
    const last = samples[samples.length - 1];
    let first = null;
    for (let i = samples.length - 2; i >= 0; i--) {
      if (!samples[i].sinks.has(name)) break;
      first = samples[i];
      if (last.t - samples[i].t >= seconds * 1000) break;
    }
    const b = last.sinks.get(name);
    if (!first || !b) return null;
    const a = first.sinks.get(name), dt = (last.t - first.t) / 1000;
    return b.map((v, k) => Math.max(0, v - a[k]) / dt);
  }

  // ---- charts ------------------------------------------------------------------------------
  const SVG = 'http://www.w3.org/2000/svg';

  // Draws `points` ([{t, values}]) as one polyline per series in `classes`, over `seconds`.
  function drawChart(container, points, classes, seconds) {
    let svg = container.firstElementChild;
    if (!svg) {
      svg = document.createElementNS(SVG, 'svg');
      svg.setAttribute('viewBox', '0 0 300 100');
      svg.setAttribute('preserveAspectRatio', 'none');
      svg.setAttribute('role', 'img');
      const axis = document.createElementNS(SVG, 'line');
      axis.setAttribute('class', 'axis');
      axis.setAttribute('x1', '0'); axis.setAttribute('x2', '300');
      axis.setAttribute('y1', '100'); axis.setAttribute('y2', '100');
      svg.append(axis);
      for (const c of classes) {
        const line = document.createElementNS(SVG, 'polyline');
        line.setAttribute('class', c);
        svg.append(line);
      }
      container.append(svg);
      const scale = el('span', { class: 'scale-label muted' });
      container.append(scale);
    }
    let max = 0;
    for (const p of points) for (const v of p.values) max = Math.max(max, v);
    const top = max > 0 ? niceCeil(max) : 1;
    const now = Date.now();
    const lines = svg.querySelectorAll('polyline');
    classes.forEach((c, k) => {
      const pts = points.map((p) => {
        const x = 300 - ((now - p.t) / (seconds * 1000)) * 300;
        const y = 100 - (p.values[k] / top) * 96;
        return x.toFixed(1) + ',' + y.toFixed(1);
      });
      lines[k].setAttribute('points', pts.join(' '));
    });
    const last = points.length ? points[points.length - 1].values : classes.map(() => 0);
    const summary = classes.map((c, k) => `${c} ${rateFmt.format(last[k])}/s`).join(', ');
    svg.setAttribute('aria-label', `events per second over the last ${duration(seconds)}: ${summary}`);
    setText(container.lastElementChild, `max ${rateFmt.format(top)}/s`);
  }

  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // ---- overview ----------------------------------------------------------------------------
  const visible = new Set();  // cards on screen: only they redraw their charts
  const observer = 'IntersectionObserver' in window
    ? new IntersectionObserver((entries) => {
      for (const e of entries) {
        const name = e.target.dataset.sink;
        if (e.isIntersecting) { visible.add(name); drawCardChart(name); } else visible.delete(name);
      }
    })
    : null;

  function makeCard(s) {
    const node = $('sink-card').content.firstElementChild.cloneNode(true);
    node.dataset.sink = s.name;
    const card = {
      node,
      name: node.querySelector('.name'),
      state: node.querySelector('.state'),
      kind: node.querySelector('.kind'),
      why: node.querySelector('.why'),
      meter: node.querySelector('.meter'),
      queueText: node.querySelector('.queue-text'),
      rows: Object.fromEntries([...SERIES, 'dead'].map((k) => [k, node.querySelector('tr.' + k)])),
      chart: node.querySelector('.chart'),
      settings: node.querySelector('.settings-line'),
      attention: false,
    };
    card.name.textContent = s.name;
    card.name.href = '#/sinks/' + encodeURIComponent(s.name);
    if (observer) observer.observe(node); else visible.add(s.name);
    return card;
  }

  function settingsLine(s) {
    const q = s.queue || {};
    const parts = [];
    if (q.when_full) parts.push(`when full: ${q.when_full}`);
    if (q.fsync) parts.push(`fsync: ${q.fsync}`);
    if (q.ack_wait_ms) parts.push(`ack_wait: ${ms(q.ack_wait_ms)}`);
    const f = Object.entries(s.filter || {});
    parts.push(f.length ? 'filter: ' + f.map(([k, g]) => `${k} ∈ ${g.join(' | ')}`).join('; ') : 'filter: every event');
    return parts.join(' · ');
  }

  function updateCard(card, s) {
    const word = stateWord(s);
    setText(card.state, word);
    card.state.className = 'state ' + word;
    setText(card.kind, `${s.type} sink · ${s.queue ? s.queue.type : '?'} queue${s.description ? ' · ' + s.description : ''}`);
    card.why.hidden = word !== 'disabled';
    if (word === 'disabled' && s.disabled) setText(card.why, `disabled since ${s.disabled.since}: ${s.disabled.reason}`);
    const fill = queueFill(s);
    const pct = setMeter(card.meter, fill.used, fill.max, fill.text);
    setText(card.queueText, fill.max ? `${fill.text} (${pct.toFixed(0)}%)` : fill.text);
    const c = s.counters || {};
    const totals = [c.events_in, c.delivered, c.failed, c.retried];
    const recent = recentRate(s.name, 10);
    SERIES.forEach((k, i) => {
      setText(card.rows[k].querySelector('.total'), fmt.format(totals[i] || 0));
      setText(card.rows[k].querySelector('.rate'), recent ? `${rateFmt.format(recent[i])}/s` : '–');
    });
    setText(card.rows.dead.querySelector('.total'), fmt.format(c.dead_lettered || 0));
    setText(card.settings, settingsLine(s));
    card.attention = word !== 'open' || pct >= 80 || (recent && recent[2] > 0) || (c.dead_lettered || 0) > 0;
  }

  function drawCardChart(name) {
    const card = state.cards.get(name);
    if (!card || card.node.hidden) return;
    drawChart(card.chart, rates((smp) => smp.sinks.get(name), state.windowSeconds), SERIES, state.windowSeconds);
  }

  function renderOverview() {
    const st = state.status;
    if (st) {
      setText($('accepted-total'), fmt.format(st.events_accepted));
      const m = st.memory;
      const label = m.limit_bytes
        ? `${bytes(m.queued_bytes)} of ${bytes(m.limit_bytes)} queued`
        : `${bytes(m.queued_bytes)} queued (no limit)`;
      const pct = setMeter($('memory-meter'), m.queued_bytes, m.limit_bytes, label);
      setText($('memory-text'), (m.limit_bytes ? `${label} (${pct.toFixed(0)}%)` : label) +
        (m.rejected_requests ? `, ${fmt.format(m.rejected_requests)} requests refused for memory` : ''));
    }
    // Cards: one per sink, in the configuration's order.
    const names = new Set(state.sinks.map((s) => s.name));
    for (const [name, card] of state.cards) {
      if (!names.has(name)) {
        if (observer) observer.unobserve(card.node);
        card.node.remove();
        state.cards.delete(name);
        visible.delete(name);
      }
    }
    const list = $('sinks');
    const query = $('search').value.trim().toLowerCase();
    const attentionOnly = $('attention').checked;
    let shown = 0;
    let previous = null;
    for (const s of state.sinks) {
      let card = state.cards.get(s.name);
      if (!card) { card = makeCard(s); state.cards.set(s.name, card); }
      if (card.node.previousElementSibling !== previous || card.node.parentNode !== list) {
        if (previous) previous.after(card.node); else list.prepend(card.node);
      }
      previous = card.node;
      updateCard(card, s);
      const match = (!query || s.name.toLowerCase().includes(query) || s.type.toLowerCase().includes(query)) &&
        (!attentionOnly || card.attention);
      card.node.hidden = !match;
      if (match) shown++;
    }
    setText($('shown'), `${shown} of ${state.sinks.length} sinks`);
    for (const name of visible) drawCardChart(name);
    // All sinks together: accepted (from the status), and the sinks' sums.
    const totals = rates((smp) => {
      const sum = [smp.accepted, 0, 0, 0];
      for (const v of smp.sinks.values()) { sum[1] += v[1]; sum[2] += v[2]; sum[3] += v[3]; }
      return sum;
    }, state.windowSeconds);
    drawChart($('total-chart'), totals, ['accepted', 'delivered', 'failed', 'retried'], state.windowSeconds);
  }

  // ---- sink detail -------------------------------------------------------------------------
  function definitionList(dl, pairs) {
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  }

  function renderDetail() {
    const name = state.route.sink;
    const s = state.sinks.find((x) => x.name === name);
    setText($('detail-title'), name);
    if (!s) {
      $('detail-state').className = 'state closed';
      setText($('detail-state'), 'not configured');
      $('enable').hidden = true;
      return;
    }
    const word = stateWord(s);
    $('detail-state').className = 'state ' + word;
    setText($('detail-state'), word);
    setText($('detail-description'), `${s.type} sink${s.description ? ': ' + s.description : ''}`);
    $('enable').hidden = word !== 'disabled';
    $('detail-disabled').hidden = word !== 'disabled';
    if (word === 'disabled' && s.disabled) setText($('detail-disabled'), `Disabled since ${s.disabled.since}: ${s.disabled.reason}`);
    const c = s.counters || {};
    // New dead letters (or fewer, replayed by someone else): read the page again.
    if (state.dl.seen !== undefined && state.dl.seen !== c.dead_lettered) loadDeadLetters();
    state.dl.seen = c.dead_lettered;
    const rows = [['events in', c.events_in, 'in'], ['delivered', c.delivered, 'delivered'],
      ['failed', c.failed, 'failed'], ['retried', c.retried, 'retried'],
      ['dead-lettered since start', c.dead_lettered, 'dead'], ['dropped (newest)', c.dropped_newest, ''],
      ['dropped (oldest)', c.dropped_oldest, ''], ['undelivered at shutdown', c.undelivered_at_shutdown, '']];
    const table = $('detail-counters');
    if (table.rows.length !== rows.length) {
      table.replaceChildren(...rows.map(([k, , cls]) => el('tr', { class: cls }, el('th', { scope: 'row', text: k }), el('td'))));
    }
    rows.forEach(([, v], i) => setText(table.rows[i].cells[1], fmt.format(v || 0)));
    drawChart($('detail-chart'), rates((smp) => smp.sinks.get(name), state.windowSeconds), SERIES, state.windowSeconds);
    const q = s.queue || {};
    const fill = queueFill(s);
    definitionList($('detail-queue'), [['type', q.type], ['now', fill.text],
      ...Object.entries(q).filter(([k]) => k !== 'type').map(([k, v]) => [k.replace(/_ms$/, ''), /_ms$/.test(k) ? ms(v) : (typeof v === 'number' ? fmt.format(v) : String(v))])]);
    const filter = Object.entries(s.filter || {});
    definitionList($('detail-filter'), filter.length ? filter.map(([k, g]) => [k, g.join(' | ')]) : [['events', 'every event']]);
    const r = s.retry || {};
    definitionList($('detail-retry'), Object.entries(r).map(([k, v]) => {
      if (k === 'breaker') return ['breaker', v ? `opens after ${v.threshold} failures, for ${ms(v.cooldown_ms)}` : 'off'];
      if (/_ms$/.test(k)) return [k.replace(/_ms$/, ''), ms(v)];
      return [k, String(v)];
    }));
  }

  function message(text, isError) {
    const m = $('detail-message');
    m.textContent = text;
    m.classList.toggle('error', !!isError);
  }

  async function loadDeadLetters() {
    const dl = state.dl;
    const name = state.route.sink;
    if (needsToken() && !token()) {
      $('dl-locked').hidden = false;
      $('dl-open').hidden = true;
      return;
    }
    $('dl-locked').hidden = true;
    $('dl-open').hidden = false;
    // Newest first: page 0 is the end of the store's (oldest-first) list.
    const head = await adminCall('GET', `v1/sinks/${encodeURIComponent(name)}/dead-letters?offset=0&limit=1`);
    if (!head) return;
    if (!head.ok) return message(`Could not read dead letters: ${(head.json && head.json.error) || head.status}`, true);
    const total = head.json.total;
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    dl.page = Math.min(dl.page, pages - 1);
    const end = total - dl.page * PAGE_SIZE;
    const offset = Math.max(0, end - PAGE_SIZE);
    let entries = [];
    if (end > 0) {
      const r = await adminCall('GET', `v1/sinks/${encodeURIComponent(name)}/dead-letters?offset=${offset}&limit=${end - offset}`);
      if (!r) return;
      if (!r.ok) return message(`Could not read dead letters: ${(r.json && r.json.error) || r.status}`, true);
      entries = r.json.dead_letters.slice().reverse();
    }
    if (state.route.sink !== name) return;  // moved on meanwhile
    dl.total = total;
    dl.entries = entries;
    const ids = new Set(entries.map((e) => e.id));
    for (const id of [...dl.selected]) if (!ids.has(id)) dl.selected.delete(id);
    renderDeadLetters();
  }

  function renderDeadLetters() {
    const dl = state.dl;
    const body = $('dl-table').tBodies[0];
    const rows = [];
    for (const e of dl.entries) {
      const box = el('input', { type: 'checkbox', checked: dl.selected.has(e.id) });
      box.setAttribute('aria-label', 'select ' + e.id);
      box.addEventListener('click', (ev) => ev.stopPropagation());
      box.addEventListener('change', () => {
        if (box.checked) dl.selected.add(e.id); else dl.selected.delete(e.id);
        updateReplayButtons();
      });
      const row = el('tr', { class: 'entry', 'data-id': e.id, 'aria-expanded': String(dl.open.has(e.id)) },
        el('td', null, box),
        el('td', { 'data-label': 'failed at', text: e.failed_at || '' }),
        el('td', { 'data-label': 'id', class: 'id', text: e.id || '' }),
        el('td', { 'data-label': 'reason', text: e.reason || '' }),
        el('td', { 'data-label': 'attempts', text: String(e.attempts ?? '') }),
        el('td', { 'data-label': 'last status', text: e.last_status === undefined || e.last_status === null ? '' : String(e.last_status) }));
      row.tabIndex = 0;
      const toggle = () => {
        if (dl.open.has(e.id)) dl.open.delete(e.id); else dl.open.add(e.id);
        renderDeadLetters();
      };
      row.addEventListener('click', toggle);
      row.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(); } });
      rows.push(row);
      if (dl.open.has(e.id)) {
        const shown = 'event' in e ? JSON.stringify(e.event, null, 2) : String(e.event_text ?? '');
        const extra = e.attributes && Object.keys(e.attributes).length
          ? '\n\nattributes: ' + JSON.stringify(e.attributes, null, 2) : '';
        const cell = el('td', { colSpan: 6 }, el('pre', { class: 'event-body', text: shown + extra }));
        rows.push(el('tr', { class: 'event' }, cell));
      }
    }
    body.replaceChildren(...rows);
    $('dl-empty').hidden = dl.total > 0;
    const end = dl.total - dl.page * PAGE_SIZE;
    setText($('dl-range'), dl.total
      ? `${fmt.format(dl.page * PAGE_SIZE + 1)}–${fmt.format(dl.page * PAGE_SIZE + dl.entries.length)} of ${fmt.format(dl.total)}, newest first`
      : '');
    $('dl-newer').disabled = dl.page === 0;
    $('dl-older').disabled = end <= PAGE_SIZE;
    $('dl-all').checked = dl.entries.length > 0 && dl.entries.every((e) => dl.selected.has(e.id));
    updateReplayButtons();
  }

  function updateReplayButtons() {
    const n = state.dl.selected.size;
    setText($('replay-selected'), n ? `Replay selected (${n})` : 'Replay selected');
    $('replay-selected').disabled = n === 0;
    $('replay-all').disabled = state.dl.total === 0;
  }

  async function replay(ids) {
    const name = state.route.sink;
    const r = await adminCall('POST', `v1/sinks/${encodeURIComponent(name)}/dead-letters/replay`, ids ? { ids } : undefined);
    if (!r) return;
    if (!r.ok) return message(`Replay failed: ${(r.json && r.json.error) || r.status}`, true);
    message(`Replayed ${fmt.format(r.json.replayed)} event${r.json.replayed === 1 ? '' : 's'}` +
      (r.json.refused ? `, ${fmt.format(r.json.refused)} refused (kept as dead letters)` : ''));
    state.dl.selected.clear();
    await loadDeadLetters();
  }

  async function enable() {
    const name = state.route.sink;
    const r = await adminCall('POST', `v1/sinks/${encodeURIComponent(name)}/enable`);
    if (!r) return;
    if (!r.ok) return message(`Enable failed: ${(r.json && r.json.error) || r.status}`, true);
    message(r.json.was_disabled ? `${name} is enabled again` : `${name} was not disabled`);
    await poll(false);
  }

  // ---- routing and polling -----------------------------------------------------------------
  function route() {
    const m = /^#\/sinks\/(.+)$/.exec(location.hash);
    let sink = null;
    if (m) { try { sink = decodeURIComponent(m[1]); } catch (_) { sink = null; } }
    const before = state.route.sink;
    state.route = sink ? { view: 'detail', sink } : { view: 'overview' };
    $('overview').hidden = !!sink;
    $('detail').hidden = !sink;
    if (sink && sink !== before) {
      state.dl = { sink, page: 0, total: 0, entries: [], selected: new Set(), open: new Set() };
      message('');
      $('detail-chart').replaceChildren();
      renderDeadLetters();
      document.title = `${sink} · evrouted console`;
      renderDetail();
      loadDeadLetters();
    } else if (!sink) {
      document.title = 'evrouted console';
      renderOverview();
    }
  }

  function renderHeader() {
    const st = state.status;
    if (!st) return;
    setText($('version'), st.version);
    setText($('uptime'), duration(st.uptime_seconds + (Date.now() - state.statusAt) / 1000));
    const r = $('readiness');
    setText(r, st.ready ? 'ready' : `not ready (${(st.readiness && st.readiness.status) || 'unknown'})`);
    r.className = st.ready ? 'ok' : 'error';
  }

  let timer = null;
  async function poll(schedule = true) {
    clearTimeout(timer);
    try {
      const [st, sk] = await Promise.all([call('GET', 'v1/status'), call('GET', 'v1/sinks')]);
      if (!st.ok || !sk.ok) throw new Error(`HTTP ${st.ok ? sk.status : st.status}`);
      const now = Date.now();
      state.status = st.json;
      state.statusAt = now;
      state.sinks = sk.json.sinks || [];
      record(now);
      $('banner').hidden = true;
      renderHeader();
      if (state.route.view === 'overview') renderOverview(); else renderDetail();
      document.body.dataset.polls = String((Number(document.body.dataset.polls) || 0) + 1);
    } catch (err) {
      const b = $('banner');
      b.textContent = `Cannot reach evrouted (${err.message}): the numbers below are from before; trying again every ${POLL_MS / 1000} s.`;
      b.hidden = false;
    }
    if (schedule) timer = setTimeout(poll, POLL_MS);
  }

  function start() {
    $('search').addEventListener('input', renderOverview);
    $('attention').addEventListener('change', renderOverview);
    $('window').addEventListener('change', () => {
      state.windowSeconds = Number($('window').value);
      if (state.route.view === 'overview') renderOverview(); else renderDetail();
    });
    for (const [id, series] of [['total-legend', ['accepted', 'delivered', 'failed', 'retried']]]) {
      $(id).replaceChildren(...series.map((s) => el('li', { class: s, text: s })));
    }
    for (const ul of document.querySelectorAll('.series-legend')) {
      ul.replaceChildren(...SERIES.map((s) => el('li', { class: s, text: s })));
    }
    $('enable').addEventListener('click', enable);
    $('replay-all').addEventListener('click', () => replay(null));
    $('replay-selected').addEventListener('click', () => replay([...state.dl.selected]));
    $('dl-unlock').addEventListener('click', async () => { if (await askToken('')) loadDeadLetters(); });
    $('dl-newer').addEventListener('click', () => { state.dl.page = Math.max(0, state.dl.page - 1); loadDeadLetters(); });
    $('dl-older').addEventListener('click', () => { state.dl.page++; loadDeadLetters(); });
    $('dl-all').addEventListener('change', () => {
      for (const e of state.dl.entries) {
        if ($('dl-all').checked) state.dl.selected.add(e.id); else state.dl.selected.delete(e.id);
      }
      renderDeadLetters();
    });
    window.addEventListener('hashchange', route);
    setInterval(renderHeader, 1000);
    poll().then(route);
  }

  start();
})();
