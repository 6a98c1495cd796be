"""The LLM side of archloop that must run PyTorch: the embedded OpenAI-compatible server
(`archloop.llm.server`), the one-time model conversion (`archloop.llm.prepare_model`) and the
LoRA trainer (`archloop.llm.lora`). Each is a CLI module driven by the TypeScript side."""
