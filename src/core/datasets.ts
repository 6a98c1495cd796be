/**
 * What the prompt tells the LLM about each dataset: input shape, classes, normalization.
 * These numbers MUST match the sandbox runner's `dataset-spec` (python/archloop runner);
 * the runner is the source of truth for what the network actually receives.
 */
import type { DatasetName, RunConfig } from './config';

export interface DatasetSpec {
  name: DatasetName;
  title: string;
  /** (channels, height, width) of one image; the runner passes in_shape = (B, C, H, W). */
  shape: readonly [number, number, number];
  classes: number;
  /** Per-channel normalization applied by the runner before the network sees a batch. */
  mean: readonly number[];
  std: readonly number[];
}

export const DATASET_SPECS: Readonly<Record<DatasetName, DatasetSpec>> = {
  cifar10: {
    name: 'cifar10',
    title: 'CIFAR-10',
    shape: [3, 32, 32],
    classes: 10,
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.247, 0.2435, 0.2616],
  },
  'fashion-mnist': {
    name: 'fashion-mnist',
    title: 'Fashion-MNIST',
    shape: [1, 28, 28],
    classes: 10,
    mean: [0.286],
    std: [0.353],
  },
  // CIFAR-shaped learnable synthetic data (tests, benchmarks).
  synthetic: {
    name: 'synthetic',
    title: 'a synthetic CIFAR-shaped image dataset',
    shape: [3, 32, 32],
    classes: 10,
    // The runner's generator at its default sizes (2048/512); other sizes differ in the 3rd decimal.
    mean: [0.521, 0.526, 0.539],
    std: [0.264, 0.251, 0.249],
  },
};

/** The spec at the shape the network sees: (C, N, N) when the run resizes (dataset.resize). */
export function resizedSpec(spec: DatasetSpec, resize: number | null): DatasetSpec {
  return resize === null ? spec : { ...spec, shape: [spec.shape[0], resize, resize] };
}

/** What a run's networks receive: its dataset at its resolution (the runner's `dataset-spec --resize`). */
export function runDatasetSpec(dataset: Pick<RunConfig['dataset'], 'name' | 'resize'>): DatasetSpec {
  return resizedSpec(DATASET_SPECS[dataset.name], dataset.resize);
}

/** Corpus entries record datasets in their source's spelling (LEMUR: `cifar-10`). */
const ALIASES: Readonly<Record<string, DatasetName>> = {
  cifar10: 'cifar10',
  'cifar-10': 'cifar10',
  'fashion-mnist': 'fashion-mnist',
  fashionmnist: 'fashion-mnist',
  synthetic: 'synthetic',
};

export function datasetSpecFor(name: string | null | undefined): DatasetSpec | undefined {
  const key = name ? ALIASES[name.toLowerCase()] : undefined;
  return key ? DATASET_SPECS[key] : undefined;
}
