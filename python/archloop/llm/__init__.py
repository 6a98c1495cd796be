"""The LLM side of archloop that must run PyTorch or read model files: the embedded models'
weights (`archloop.llm.weights`), their one-time conversion for training
(`archloop.llm.prepare_model`), the LoRA trainer (`archloop.llm.lora`) and the conversion of its
adapters for llama.cpp (`archloop.llm.lora_gguf`). Each is a CLI module driven by the
TypeScript side; the embedded server itself is TypeScript (src/llm/embedded).
"""
