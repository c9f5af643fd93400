"""The README's commands, read as a newcomer copies them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def commands(prefix: str) -> list[str]:
    """Every command in the README's bash blocks that starts with ``prefix``, its
    continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    joined = [re.sub(r"\\\n\s*", " ", block) for block in blocks]
    return [line.strip() for block in joined for line in block.splitlines()
            if line.strip().startswith(prefix)]


def test_every_local_lm_eval_command_sets_a_batch_size():
    """lm-eval's default batch size 1 makes hf and vllm generate a turn's live trajectories
    one at a time (4-5x slower); the README's first command did that."""
    local = [c for c in commands("lm_eval") if re.search(r"--model (hf|vllm)\b", c)]
    assert local, "no hf / vllm command found in the README"
    for command in local:
        assert "--batch_size" in command, command
