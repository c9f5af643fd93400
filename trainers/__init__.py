"""LoRA / full fine-tuning on ReAct trajectories (installed as ``fireact_eval.trainers``)."""
