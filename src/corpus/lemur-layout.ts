/**
 * Where things are in an `nn-dataset` (LEMUR) wheel, verified on nn-dataset 2.1.2 (see
 * docs/lemur.md): architectures are `ab/nn/nn/<Name>.py`; training statistics are
 * `ab/nn/stat/train/<task>_<dataset>_<metric>_<Name>/<epoch>.json`, each a list of trials
 * with an `accuracy`; per-model licences are `doc/licenses/LICENSE-<X>-NNs`, which list
 * the file-name prefixes they cover. Pure functions over entry names and file texts.
 */
import { z } from 'zod';
import type { ZipEntry } from './wheel-zip';

export const CODE_DIR = 'ab/nn/nn/';
export const CIFAR10_STAT_DIR = 'ab/nn/stat/train/img-classification_cifar-10_acc_';
/** The epoch whose accuracy archloop compares with: its own candidates train one epoch. */
export const FIRST_EPOCH_FILE = '1.json';

export interface LemurArchitecture {
  name: string;
  codePath: string;
  statPath: string;
  /** How many epochs LEMUR recorded for this model on CIFAR-10. */
  epochs: number;
}

export interface LicenceRule {
  licence: string;
  prefixes: string[];
}

export interface LemurLayout {
  /** From the dist-info folder name, e.g. 2.1.2. */
  version: string | null;
  architectures: LemurArchitecture[];
  licenceFiles: string[];
  packageLicenceFile: string | null;
  /** Code files without CIFAR-10 statistics, and empty ones (not importable). */
  skipped: { noCifar10Stats: number; emptyCode: number };
}

export function parseLayout(entries: readonly ZipEntry[]): LemurLayout {
  const code = new Map<string, ZipEntry>();
  const epochs = new Map<string, Set<string>>();
  const licenceFiles: string[] = [];
  let packageLicenceFile: string | null = null;
  let version: string | null = null;
  for (const entry of entries) {
    const { name } = entry;
    if (name.startsWith(CODE_DIR) && name.endsWith('.py') && !name.slice(CODE_DIR.length).includes('/')) {
      const model = name.slice(CODE_DIR.length, -3);
      if (!model.startsWith('__')) code.set(model, entry);
    } else if (name.startsWith(CIFAR10_STAT_DIR)) {
      const [model, file] = name.slice(CIFAR10_STAT_DIR.length).split('/');
      if (model && file?.endsWith('.json')) (epochs.get(model) ?? epochs.set(model, new Set()).get(model)!).add(file);
    } else if (/^doc\/licenses\/LICENSE-[^/]+-NNs$/i.test(name)) {
      licenceFiles.push(name);
    } else {
      const distInfo = /^nn_dataset-([^/]+)\.dist-info\/(licenses\/)?LICENSE[^/]*$/.exec(name);
      if (distInfo) packageLicenceFile = name;
      version ??= /^nn_dataset-([^/]+)\.dist-info\//.exec(name)?.[1] ?? null;
    }
  }
  const architectures: LemurArchitecture[] = [];
  let emptyCode = 0;
  for (const [model, files] of epochs) {
    const entry = code.get(model);
    if (!entry || !files.has(FIRST_EPOCH_FILE)) continue;
    if (entry.size === 0) {
      emptyCode++;
      continue;
    }
    architectures.push({ name: model, codePath: entry.name, statPath: `${CIFAR10_STAT_DIR}${model}/${FIRST_EPOCH_FILE}`, epochs: files.size });
  }
  architectures.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const noCifar10Stats = [...code.keys()].filter((model) => !epochs.get(model)?.has(FIRST_EPOCH_FILE)).length;
  return { version, architectures, licenceFiles, packageLicenceFile, skipped: { noCifar10Stats, emptyCode } };
}

/** SPDX id from a licence file's title line. */
export function spdxFromTitle(text: string): string {
  const title = text.trim().split('\n')[0]?.trim() ?? '';
  if (/^MIT License/i.test(title)) return 'MIT';
  if (/^BSD 3-Clause/i.test(title)) return 'BSD-3-Clause';
  if (/^Apache License/i.test(title)) return 'Apache-2.0';
  return title || 'unknown';
}

/** "…with file names beginning or identical to A, B, C:" / "…beginning with MoE:" → prefixes. */
export function parseLicenceRule(text: string): LicenceRule {
  const prefixes: string[] = [];
  for (const match of text.matchAll(/file names beginning(?: or identical to| with)\s+([^:]+):/g)) {
    prefixes.push(...match[1]!.split(',').map((prefix) => prefix.trim()).filter(Boolean));
  }
  return { licence: spdxFromTitle(text), prefixes };
}

/** Every licence whose prefixes cover the model ("A AND B" when two claim it), else the package's. */
export function licenceFor(model: string, rules: readonly LicenceRule[], packageLicence: string): string {
  const matching = [...new Set(rules.filter((rule) => rule.prefixes.some((p) => model.startsWith(p))).map((rule) => rule.licence))];
  return matching.length ? matching.sort().join(' AND ') : packageLicence;
}

/** One CIFAR-10 trial record; LEMUR stores many other fields, kept as they are. */
export const LemurTrial = z.looseObject({
  accuracy: z.number().min(0).max(1),
  uid: z.string().optional(),
  transform: z.string().optional(),
  batch: z.number().optional(),
  lr: z.number().optional(),
  momentum: z.number().optional(),
});
// 2.1.2 has 2675 CIFAR-10 models (the ga-* ones) whose epoch files are all `[]`: no accuracy.
export const LemurEpochStats = z.array(LemurTrial);
export type LemurTrial = z.infer<typeof LemurTrial>;

/** The best trial of an epoch file (LEMUR tried many hyperparameter settings per model), if any. */
export function bestTrial(statText: string): LemurTrial | undefined {
  const trials = LemurEpochStats.parse(JSON.parse(statText));
  return trials.reduce<LemurTrial | undefined>((best, trial) => (best && best.accuracy >= trial.accuracy ? best : trial), undefined);
}

/** LEMUR programs follow the same contract archloop asks for; anything else is not a seed. */
export function followsContract(code: string): boolean {
  return /^class\s+Net\s*\(/m.test(code) && /^def\s+supported_hyperparameters\s*\(/m.test(code);
}
