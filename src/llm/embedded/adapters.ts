/**
 * Where an adapter named in `POST /v1/load_lora_adapter` may come from, and in which
 * format llama.cpp reads it. Only files under the adapters root (the artifacts directory)
 * load: a caller of the API must not make the server read arbitrary files. A PEFT adapter
 * directory (what the trainer writes, what vLLM loads) is converted once to llama.cpp's
 * GGUF LoRA format, cached beside it as `adapter.gguf`.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { ApiError } from './api';

export const GGUF_ADAPTER_FILE = 'adapter.gguf';
const PEFT_CONFIG = 'adapter_config.json';
const PEFT_WEIGHTS = ['adapter_model.safetensors', 'adapter_model.bin'];

/** `candidate` (resolved, symlinks followed) lies inside `root`. */
export function isInside(candidate: string, root: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

function real(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    throw new ApiError(400, `no LoRA adapter at ${file}`, 'lora_path');
  }
}

function mtime(file: string): number {
  return existsSync(file) ? statSync(file).mtimeMs : -1;
}

/** The GGUF LoRA file to load for `loraPath`, converting a PEFT directory when needed. */
export async function resolveAdapterFile(
  loraPath: string,
  adaptersRoot: string,
  convert: (adapterDir: string) => Promise<string>,
): Promise<string> {
  const root = real(adaptersRoot);
  const target = real(path.isAbsolute(loraPath) ? loraPath : path.join(root, loraPath));
  if (!isInside(target, root)) {
    throw new ApiError(400, `adapters load only from ${root}; refused ${loraPath}`, 'lora_path');
  }
  if (statSync(target).isFile()) {
    if (!target.endsWith('.gguf')) throw new ApiError(400, `${loraPath} is neither a GGUF file nor a PEFT adapter directory`, 'lora_path');
    return target;
  }
  if (!existsSync(path.join(target, PEFT_CONFIG))) {
    throw new ApiError(400, `no LoRA adapter at ${loraPath} (${PEFT_CONFIG} missing)`, 'lora_path');
  }
  const gguf = path.join(target, GGUF_ADAPTER_FILE);
  const weights = Math.max(...PEFT_WEIGHTS.map((name) => mtime(path.join(target, name))));
  if (mtime(gguf) >= weights && weights >= 0) return gguf;
  return convert(target);
}
