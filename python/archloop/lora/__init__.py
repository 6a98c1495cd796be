"""LoRA fine-tuning of the base model, and its adapters converted for llama.cpp.

    python -m archloop.lora --job JOB.json                                  # train (__main__.py)
    python -m archloop.lora.gguf --adapter DIR --base BASE.gguf --out FILE  # PEFT adapter -> GGUF LoRA

The trainer's pieces: job.py (the job file, the error classes), data.py (training pairs),
guard.py (one trainer per output dir, none without its worker), checkpoints.py (what to
resume from), model.py (base model and LoRA set-up), train.py (the run), manifest.py (what
an adapter was trained from) and events.py (the JSON lines on stdout).
"""
