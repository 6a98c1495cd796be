"""The LLM side of archloop that must run PyTorch or read model files: the embedded models'
weights (`archloop.llm.weights`) and their one-time conversion for training
(`archloop.llm.prepare_model`). Each is a CLI module driven by the TypeScript side; the
embedded server itself is TypeScript (src/llm/embedded). The LoRA trainer is `archloop.lora`.
"""
