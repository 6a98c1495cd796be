"""The training run itself. TRL's SFTTrainer fits the job: it applies the base model's chat
template to conversational prompt/completion rows and masks the loss to the completion (the
assistant turn), and the underlying transformers Trainer gives step checkpoints with
optimizer, scheduler and RNG state, which is what resuming after a kill needs."""

from pathlib import Path

import torch
from transformers import TrainerCallback

from archloop.lora.events import emit
from archloop.lora.job import LoraJob


class ProgressEvents(TrainerCallback):
    """One progress line per optimizer step (logging_steps=1)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            emit({"event": "progress", "step": state.global_step, "totalSteps": state.max_steps,
                  "loss": float(logs["loss"])})


def sft_config(job: LoraJob, checkpoints: Path):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(checkpoints),
        per_device_train_batch_size=job.batchSize,
        num_train_epochs=job.epochs,
        max_steps=job.maxSteps or -1,
        learning_rate=job.lr,
        bf16=job.bf16,
        seed=job.seed,
        data_seed=job.seed,
        max_length=job.maxSeqLen,
        packing=False,
        completion_only_loss=True,
        logging_steps=1,
        save_strategy="steps",
        save_steps=job.checkpointEvery,
        save_total_limit=2,  # the newest may be cut off by a kill; the one before it is whole
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
    )


def final_loss(log_history: list[dict]) -> float | None:
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    return float(losses[-1]) if losses else None


def train(peft_model, tokenizer, rows: list[dict], job: LoraJob, checkpoints: Path, resume_from: Path | None):
    """Train (or finish training) and return the trainer, its state holding steps and losses."""
    from datasets import Dataset
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=peft_model,
        args=sft_config(job, checkpoints),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[ProgressEvents()],
    )
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return trainer
