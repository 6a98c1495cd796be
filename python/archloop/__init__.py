"""archloop's Python side: the sandboxed runner for generated PyTorch programs, the LoRA
trainer and the embedded OpenAI-compatible LLM server. Orchestration lives in TypeScript."""
