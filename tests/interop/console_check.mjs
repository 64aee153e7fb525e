// Drives evrouted's console (GET /ui) in Debian's chromium with puppeteer-core, for
// tests/ui/console_test.cpp: `node console_check.mjs <scenario> '<json options>'`.
// Prints one JSON line on stdout: {"ok": true, ...figures} or {"ok": false, "step", "error",
// "problems"}; a screenshot of the page is written when a step fails. Any console error or
// warning, or uncaught exception, of the page fails the run (listed in "problems").
//
// Options: url (evrouted's base URL), out_dir (screenshots), chromium (the browser), and per
// scenario: ingest_token, admin_token, wrong_token.
//   full: the live numbers, a disabled sink, dead letters (token asked once, a refused token asked
//         again), replay selected and all, enable, the layouts at 1280, 375 and 320 px.
//   many: 200 sinks: all shown, the search, and the longest task of the page while it polls.
import puppeteer from 'puppeteer-core';
import path from 'node:path';

const scenario = process.argv[2];
const opts = JSON.parse(process.argv[3] || '{}');
const base = opts.url.replace(/\/$/, '');
const TIMEOUT = 20000;

const problems = [];
let allow401 = false;  // while the test presents a wrong token on purpose
let step = 'launch';
const result = { ok: false };

function fail(message) { throw new Error(message); }

async function post(events, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(base + '/v1/events', { method: 'POST', headers, body: JSON.stringify(events) });
  if (res.status !== 202) fail(`POST /v1/events: ${res.status} ${await res.text()}`);
}

const text = (page, selector) =>
  page.$eval(selector, (e) => e.textContent.trim()).catch(() => null);

async function waitText(page, selector, want) {
  await page.waitForFunction((sel, w) => {
    const e = document.querySelector(sel);
    return !!e && !e.closest('[hidden]') && e.textContent.includes(w);
  }, { timeout: TIMEOUT }, selector, want).catch(async () => {
    fail(`${selector}: waited for "${want}", have ${JSON.stringify(await text(page, selector))}`);
  });
}

async function waitVisible(page, selector) {
  await page.waitForFunction((sel) => {
    const e = document.querySelector(sel);
    return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;
  }, { timeout: TIMEOUT }, selector).catch(() => fail(`${selector} did not become visible`));
}

async function rows(page) {
  return page.$$eval('#dl-table tbody tr.entry', (rs) => rs.map((r) => r.dataset.id));
}

async function waitRows(page, n) {
  await page.waitForFunction((k) => document.querySelectorAll('#dl-table tbody tr.entry').length === k,
    { timeout: TIMEOUT }, n).catch(async () => fail(`waited for ${n} dead-letter rows, have ${(await rows(page)).length}`));
}

const dialogOpen = (page) => page.$eval('#token-dialog', (d) => d.open);

async function giveToken(page, token) {
  await page.waitForFunction(() => document.getElementById('token-dialog').open, { timeout: TIMEOUT })
    .catch(() => fail('the token dialog did not open'));
  await page.$eval('#token-input', (i) => { i.value = ''; });
  await page.type('#token-input', token);
  await page.click('#token-ok');
}

// No part of the page may be wider than the screen.
async function fitsWidth(page, what) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  if (scroll > inner) fail(`${what}: the page is ${scroll}px wide in a ${inner}px window`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(opts.out_dir, name), fullPage: false });
}

async function overview(page) {
  await page.evaluate(() => { location.hash = ''; });
  await waitVisible(page, '#overview');
}

async function full(page) {
  step = 'the console loads at / (redirected to /ui)';
  await page.goto(base + '/', { waitUntil: 'load' });
  if (!new URL(page.url()).pathname.endsWith('/ui')) fail(`/ led to ${page.url()}`);
  await waitText(page, '[data-sink="hooks"] .state', 'open');
  await waitText(page, '#version', '.');
  await waitText(page, '#readiness', 'ready');

  step = 'states are words, the disabled sink says why';
  await waitText(page, '[data-sink="gone"] .state', 'disabled');
  await waitText(page, '[data-sink="gone"] .why', '410');
  await waitText(page, '[data-sink="archive"] .settings-line', 'order.*');
  await waitText(page, '[data-sink="hooks"] tr.dead .total', '30');

  step = 'the numbers move';
  const before = Number((await text(page, '#accepted-total')).replace(/,/g, ''));
  // In rounds, so that the charts have a shape in the screenshot.
  for (const [from, n] of [[0, 5], [5, 15], [20, 8], [28, 12]]) {
    const live = Array.from({ length: n }, (_, i) => ({ id: `live-${from + i}`, type: 'order.created', n: from + i }));
    await post(live, opts.ingest_token);
    await new Promise((r) => setTimeout(r, 2100));
  }
  await page.waitForFunction((b) => Number(document.getElementById('accepted-total').textContent.replace(/,/g, '')) >= b + 40,
    { timeout: TIMEOUT }, before).catch(() => fail('#accepted-total did not grow by 40'));
  await page.waitForFunction(() => {
    const r = document.querySelector('[data-sink="archive"] tr.in .rate');
    return r && /^[0-9.,]+\/s$/.test(r.textContent) && parseFloat(r.textContent) > 0;
  }, { timeout: TIMEOUT }).catch(() => fail('the archive sink shows no rate'));
  await page.waitForFunction(() => [...document.querySelectorAll('#total-chart polyline')]
    .some((l) => (l.getAttribute('points') || '').split(' ').length >= 2), { timeout: TIMEOUT })
    .catch(() => fail('the chart of all sinks has no line'));
  result.accepted_shown = await text(page, '#accepted-total');
  await shot(page, 'console-1280.png');

  step = 'dead letters: the token is asked for, a wrong one is refused';
  await page.click('[data-sink="hooks"] a.name');
  await waitVisible(page, '#detail');
  await waitText(page, '#detail-title', 'hooks');
  await waitVisible(page, '#dl-locked');
  await page.click('#dl-unlock');
  allow401 = true;
  await giveToken(page, opts.wrong_token);
  await waitText(page, '#token-error', 'refused');
  await giveToken(page, opts.admin_token);
  await waitRows(page, 25);
  allow401 = false;
  await waitText(page, '#dl-range', '1–25 of 30, newest first');
  const first = await rows(page);  // given up in order (concurrency 1): the newest is dl-30
  const want = Array.from({ length: 25 }, (_, i) => `dl-${30 - i}`);
  if (JSON.stringify(first) !== JSON.stringify(want)) fail(`first page: ${first}`);

  step = 'paging to older dead letters';
  await page.click('#dl-older');
  await waitRows(page, 5);
  await waitText(page, '#dl-range', '26–30 of 30, newest first');
  const older = await rows(page);
  if (JSON.stringify(older) !== JSON.stringify(['dl-5', 'dl-4', 'dl-3', 'dl-2', 'dl-1'])) fail(`second page: ${older}`);
  if (!(await page.$eval('#dl-older', (b) => b.disabled))) fail('"Older" is enabled on the last page');

  step = 'an entry shows its event on click';
  await page.click('#dl-table tr.entry[data-id="dl-3"] td.id');
  await waitText(page, '#dl-table pre.event-body', '"dl-3"');
  await waitText(page, '#dl-table pre.event-body', 'order.created');
  await shot(page, 'console-sink-1280.png');

  step = 'replay selected: the token is not asked again';
  await page.click('#dl-table tr.entry[data-id="dl-3"] input[type="checkbox"]');
  await waitText(page, '#replay-selected', 'Replay selected (1)');
  await page.click('#replay-selected');
  await waitText(page, '#detail-message', 'Replayed 1 event');
  if (await dialogOpen(page)) fail('the token was asked for again');
  await waitRows(page, 4);
  await waitText(page, '#dl-range', '26–29 of 29, newest first');

  step = 'replay all';
  await page.click('#replay-all');
  await waitText(page, '#detail-message', 'Replayed 29 events');
  await waitRows(page, 0);
  await waitVisible(page, '#dl-empty');

  step = 'enable a disabled sink';
  await overview(page);
  await page.click('[data-sink="gone"] a.name');
  await waitText(page, '#detail-title', 'gone');
  await waitVisible(page, '#enable');
  await page.click('#enable');
  if (await dialogOpen(page)) fail('the token was asked for again');
  await waitText(page, '#detail-message', 'gone is enabled again');
  await waitText(page, '#detail-state', 'open');

  step = 'narrow screens';
  for (const width of [375, 320]) {
    await page.setViewport({ width, height: 812 });
    await overview(page);
    await waitText(page, '[data-sink="gone"] .state', 'open');
    await fitsWidth(page, `overview at ${width}px`);
    if (width === 375) await shot(page, 'console-375.png');
    await page.click('[data-sink="hooks"] a.name');
    await waitText(page, '#detail-title', 'hooks');
    await fitsWidth(page, `sink view at ${width}px`);
  }
}

async function many(page) {
  await page.evaluateOnNewDocument(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({ at: e.startTime, ms: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  step = '200 sinks are shown';
  await page.goto(base + '/ui', { waitUntil: 'load' });
  await page.waitForFunction(() => document.querySelectorAll('#sinks .card').length === 200, { timeout: TIMEOUT })
    .catch(() => fail('200 cards were not shown'));
  await waitText(page, '#shown', '200 of 200 sinks');
  const firstRender = await page.evaluate(() => performance.now());
  const polls = Number(await page.$eval('body', (b) => b.dataset.polls || 0));

  step = 'it keeps polling with events flowing';
  for (let round = 0; round < 5; round++) {
    await post(Array.from({ length: 200 }, (_, i) => ({ type: `t-${i}`, round })));
    await new Promise((r) => setTimeout(r, 1000));
  }
  await page.waitForFunction((p) => Number(document.body.dataset.polls) >= p + 4, { timeout: TIMEOUT }, polls)
    .catch(() => fail('the page stopped polling'));
  await waitText(page, '[data-sink="sink-199"] tr.in .total', '5');

  step = 'the search narrows the list';
  await page.type('#search', 'sink-042');
  await waitText(page, '#shown', '1 of 200 sinks');
  await page.$eval('#search', (i) => { i.value = ''; i.dispatchEvent(new Event('input')); });
  await waitText(page, '#shown', '200 of 200 sinks');

  const tasks = await page.evaluate(() => window.__longTasks);
  const after = tasks.filter((t) => t.at > firstRender);
  result.first_render_ms = Math.round(firstRender);
  result.long_tasks_after_first_render = after.length;
  result.longest_task_ms = Math.round(Math.max(0, ...after.map((t) => t.ms)));
  result.longest_first_task_ms = Math.round(Math.max(0, ...tasks.map((t) => t.ms)));
}

const browser = await puppeteer.launch({
  executablePath: opts.chromium || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
});
let page;
try {
  page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warn' && m.type() !== 'warning') return;
    if (allow401 && /status of 401/.test(m.text())) return;
    problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  await page.setViewport({ width: 1280, height: 900 });
  if (scenario === 'full') await full(page);
  else if (scenario === 'many') await many(page);
  else fail(`unknown scenario ${scenario}`);
  step = 'no console errors';
  if (problems.length) fail(`${problems.length} console problems`);
  result.ok = true;
} catch (err) {
  result.step = step;
  result.error = err.message;
  if (page) await shot(page, `failed-${scenario}.png`).catch(() => {});
} finally {
  result.problems = problems;
  await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.ok ? 0 : 1);
