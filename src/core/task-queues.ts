/**
 * archloop's two Temporal task queues: `control` (workflows, LLM calls, validation,
 * novelty, bookkeeping) and `gpu` (training candidates, LoRA fine-tuning). Workers,
 * workflows and clients all name them from here.
 */
export const TASK_QUEUES = { control: 'archloop-control', gpu: 'archloop-gpu' } as const;
export type QueueName = keyof typeof TASK_QUEUES;
