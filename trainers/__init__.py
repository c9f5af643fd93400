"""LoRA / full fine-tuning on ReAct trajectories (installed as ``fireact_eval.trainers``)."""

from pathlib import Path

# Config files for `accelerate launch --config_file`: DDP, FSDP and DeepSpeed ZeRO-2/3.
ACCELERATE_CONFIGS = Path(__file__).parent / "accelerate"
