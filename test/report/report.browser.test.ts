/**
 * The report end to end: a fabricated run in a real Postgres database, `buildReport`,
 * then the page opened from disk in headless Chromium with every non-file request
 * blocked (the page must be self-contained). The report and a screenshot stay under
 * test-artifacts/report/ for a person to look at.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { insertCandidate } from '../../src/db/candidates';
import { insertRunRecord, startCycle } from '../../src/db/runs';
import { REPO_ROOT } from '../../src/env';
import { buildReport, UnknownRunError } from '../../src/report';
import type { CycleTableRow } from '../../src/report';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { SEED_CORPUS, seedFakeRun, type FakeRun } from './fake-run';

const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'report');
const OUT = path.join(ARTIFACTS, 'out');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOP = 4;

const CHARTS: Record<string, string[]> = {
  'valid-rate': ['Valid rate per cycle (95 % Wilson interval)', 'Valid %', 'Cycle'],
  accuracy: ['Best and mean first-epoch accuracy', 'Best', 'Mean', 'Accuracy %'],
  'share-above-40': ['Share of trained models with accuracy ≥ 40 %'],
  admitted: ['Novel architectures admitted per cycle'],
  'accuracy-distribution': ['Accuracy distribution per cycle (valid, trained candidates)', 'admitted'],
  'failure-classes': ['Failure classes per cycle', 'Failure class', 'syntax', 'duplicate', 'no-code'],
};

/** Width and height from a PNG's IHDR chunk (after checking the signature). */
function pngSize(file: string): { width: number; height: number } {
  const bytes = readFileSync(file);
  assert.equal(bytes.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', `${file} is a PNG`);
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe('report', () => {
  let db: TestDatabase;
  let run: FakeRun;
  let files: string[];
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  const blocked: string[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    db = await createTestDatabase();
    run = await seedFakeRun(db.pool);
    rmSync(ARTIFACTS, { recursive: true, force: true });
    files = (await buildReport(db.pool, run.runId, OUT, { top: TOP, now: new Date('2026-01-11T00:00:00Z') })).files;

    profile = mkdtempSync(path.join(os.tmpdir(), 'archloop-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(pathToFileURL(path.join(OUT, 'index.html')).href, { waitUntil: 'load' });
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await db?.drop();
  });

  it('writes the page, the table as CSV and JSON, and every figure as SVG and PNG', () => {
    for (const file of ['index.html', 'table.csv', 'table.json']) assert.ok(files.includes(file), file);
    for (const name of Object.keys(CHARTS)) {
      assert.match(readFileSync(path.join(OUT, 'figures', `${name}.svg`), 'utf8'), /^<svg[\s\S]*<\/svg>$/);
      const { width, height } = pngSize(path.join(OUT, 'figures', `${name}.png`));
      assert.ok(width > 400 && height > 200, `${name}.png is ${width}×${height}`);
    }
    const csv = readFileSync(path.join(OUT, 'table.csv'), 'utf8').trim().split('\r\n');
    assert.equal(csv.length, 4);
  });

  it('tables numbers that agree with the candidate rows', () => {
    const { rows } = JSON.parse(readFileSync(path.join(OUT, 'table.json'), 'utf8')) as { rows: CycleTableRow[] };
    assert.deepEqual(
      rows.map((r) => [r.cycle, r.finished]),
      [
        [1, true],
        [2, true],
        [3, false],
      ],
    );
    for (const row of rows) {
      const own = run.candidates.filter((c) => c.cycle === row.cycle);
      const trained = own.filter((c) => c.valid && c.accuracy !== null).map((c) => c.accuracy!);
      assert.equal(row.sampled, own.length);
      assert.equal(row.valid, own.filter((c) => c.valid).length);
      assert.equal(row.unique, own.filter((c) => c.admitted).length);
      assert.equal(row.bestPct, Math.round(Math.max(...trained) * 10_000) / 100);
    }
  });

  it('opens offline in Chromium without errors or outside requests', () => {
    assert.deepEqual(blocked, []);
    assert.deepEqual(pageErrors, []);
  });

  it('shows the per-cycle table in the paper layout', async () => {
    const headers = await page.locator('#cycle-table thead th').allTextContents();
    assert.deepEqual(headers.slice(0, 7), ['Cycle', 'Valid %', 'Best %', 'Mean %', '≥40 %', 'Unique', 'Total train prompts']);
    assert.ok(headers.includes('Valid 95 % CI low') && headers.includes('Valid 95 % CI high'));
    const cycles = await page.locator('#cycle-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-cycle')));
    assert.deepEqual(cycles, ['1', '2', '3']);
    assert.equal(await page.locator('#cycle-table tbody tr.unfinished').count(), 1);
  });

  it('renders every chart as a non-empty SVG with its labels', async () => {
    assert.equal(await page.locator('figure.chart').count(), Object.keys(CHARTS).length);
    for (const [name, labels] of Object.entries(CHARTS)) {
      const svg = page.locator(`#fig-${name} svg`).first();
      const box = await svg.boundingBox();
      assert.ok(box && box.width > 200 && box.height > 150, `${name} has a size`);
      const marks = await svg.locator('g.role-mark > *').count();
      assert.ok(marks > 0, `${name} draws marks`);
      const texts = await svg.locator('text').allTextContents();
      for (const label of labels) assert.ok(texts.includes(label), `${name} shows "${label}" (has: ${texts.join(' | ')})`);
    }
  });

  it('lists the top architectures with their numbers, code and diagram', async () => {
    const expected = run.candidates
      .filter((c) => c.valid && c.accuracy !== null)
      .map((c) => c.accuracy!)
      .sort((a, b) => b - a)
      .slice(0, TOP);
    const articles = page.locator('article.arch');
    assert.equal(await articles.count(), TOP);
    for (let i = 0; i < TOP; i += 1) {
      const article = articles.nth(i);
      const text = await article.textContent();
      assert.ok(text?.includes(`${(expected[i]! * 100).toFixed(2)} %`), `rank ${i + 1} accuracy`);
      assert.match(text ?? '', /parameters \d/);
      assert.match(text ?? '', /FLOPs \d/);
      assert.match((await article.locator('pre code').textContent()) ?? '', /class Net\(nn\.Module\)/);
      const nodes = await article.locator('.diagram svg g.node text').allTextContents();
      assert.ok(nodes.includes('input') && nodes.includes('output'), `rank ${i + 1} diagram: ${nodes.join(' | ')}`);
    }
    // The residual IR is drawn with its branch.
    const residual = await page.locator('article.arch', { hasText: '90.50 %' }).locator('.diagram svg g.node text').allTextContents();
    assert.ok(residual.includes('add') && residual.includes('AdaptiveAvgPool2d'), residual.join(' | '));
    assert.equal(await page.locator('.diagram svg g.edge').count() > 0, true);
  });

  it('keeps a full-page screenshot as a test artifact', async () => {
    const shot = path.join(ARTIFACTS, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot) && statSync(shot).size > 50_000);
  });

  it('refuses an unknown run', async () => {
    await assert.rejects(buildReport(db.pool, 'no-such-run', path.join(ARTIFACTS, 'none')), UnknownRunError);
  });

  it('reports a run that has trained nothing yet, with an unreadable config', async () => {
    await insertRunRecord(db.pool, { id: 'early', name: 'early run', preset: 'demo', config: { old: 'schema' } });
    await startCycle(db.pool, 'early', 1, 'base');
    await insertCandidate(db.pool, { runId: 'early', cycle: 1, sampleIndex: 0, model: 'base' }, { status: 'extract-failed', valid: null, failure_class: 'no-code' });
    await insertCandidate(db.pool, { runId: 'early', cycle: 1, sampleIndex: 1, model: 'base' }, { status: 'invalid', valid: false, failure_class: 'syntax' });
    const out = path.join(ARTIFACTS, 'early');
    await buildReport(db.pool, 'early', out);
    const html = readFileSync(path.join(out, 'index.html'), 'utf8');
    assert.match(html, /Best and mean first-epoch accuracy — no data yet/);
    assert.match(html, /No valid, trained candidate yet/);
    assert.doesNotMatch(html, /Failure classes per cycle — no data yet/);
    // Total train prompts: the seed corpus the fake run put in this database (shared by every run).
    assert.equal(readFileSync(path.join(out, 'table.csv'), 'utf8').split('\r\n')[1], `1,0,,,,0,${SEED_CORPUS},0,0,65.76,2,0,0,false`);
  });
});
