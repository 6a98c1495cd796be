"""archloop's Python side: the sandboxed runner for generated PyTorch programs (`runner`), the
embedded models' weights (`llm`) and the LoRA trainer (`lora`). Orchestration lives in TypeScript."""
