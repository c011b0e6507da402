"""Fine-tuning from a pre-trained run: load its weights under new names, freeze some.

``model.init_from`` names a run folder (its ``model.safetensors``), a checkpoint
folder, or a ``.safetensors`` file. ``model.init_map`` renames keys by prefix,
longest prefix first, so an MAE's ``encoder.`` can become a classifier's
``encoders.image.``. A renamed key must exist in the model with the same shape;
keys no prefix maps are loaded where the model has them (same name and shape) and
skipped otherwise. ``model.freeze`` lists ``fnmatch`` patterns of parameter names
whose ``requires_grad`` is turned off; a pattern that matches nothing is an error,
so a typo never leaves a model silently unfrozen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import NamedTuple

from torch import Tensor, nn

from polymodal.errors import ConfigError
from polymodal.train.checkpoint import STATE, load_weights


class Initialised(NamedTuple):
    """What :func:`init_from` did.

    Attributes:
        loaded: model keys that received pre-trained values.
        skipped: source keys (after renaming) the model has not, or has in another shape.
    """

    loaded: list[str]
    skipped: list[str]


def rename(keys: Mapping[str, Tensor], key_map: Mapping[str, str]) -> dict[str, tuple[str, bool]]:
    """``{new name: (old name, mapped)}`` for every key, prefixes replaced longest first."""
    prefixes = sorted(key_map, key=len, reverse=True)
    out: dict[str, tuple[str, bool]] = {}
    for key in keys:
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        new = key if prefix is None else key_map[prefix] + key[len(prefix) :]
        out[new] = (key, prefix is not None)
    return out


def init_from(
    model: nn.Module, source: str | Path, key_map: Mapping[str, str] | None = None
) -> Initialised:
    """Copy pre-trained weights into ``model`` (module doc).

    Args:
        model: the freshly built model.
        source: run folder, checkpoint folder or ``.safetensors`` file.
        key_map: ``{old prefix: new prefix}``.

    Raises:
        ConfigError: the source cannot be read, a mapped key is missing from the
            model or has another shape, or nothing at all was loaded.
    """
    path = Path(source)
    if not path.exists():
        raise ConfigError(
            f"model.init_from: {path} does not exist (a run folder or .safetensors file)"
        )
    weights = load_weights(path)
    if (path / STATE).is_file():  # a Lightning checkpoint: the module's attribute names lead
        weights = {
            k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")
        }
    own = model.state_dict()
    state: dict[str, Tensor] = {}
    skipped: list[str] = []
    for new, (old, mapped) in rename(weights, key_map or {}).items():
        value = weights[old]
        fits = new in own and tuple(own[new].shape) == tuple(value.shape)
        if mapped and not fits:
            found = "is missing" if new not in own else f"has shape {tuple(own[new].shape)}"
            raise ConfigError(
                f"model.init_map maps {old!r} (shape {tuple(value.shape)}) to {new!r}, which the "
                f"model {found}; fix the prefixes in model.init_map"
            )
        if fits:
            state[new] = value
        else:
            skipped.append(new)
    if not state:
        raise ConfigError(
            f"model.init_from: no key of {path} fits the model "
            f"(e.g. {next(iter(weights), '-')!r}); map the names with model.init_map"
        )
    model.load_state_dict(state, strict=False)
    return Initialised(sorted(state), skipped)


def freeze(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Turn off ``requires_grad`` of parameters whose names match any pattern.

    Returns:
        The frozen parameter names.

    Raises:
        ConfigError: a pattern that matches no parameter (the message shows some names).
    """
    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not any(fnmatchcase(name, pattern) for name in names):
            raise ConfigError(
                f"model.freeze pattern {pattern!r} matches no parameter; names look like "
                f"{', '.join(names[:3])}"
            )
    frozen = []
    for name, parameter in model.named_parameters():
        if any(fnmatchcase(name, p) for p in patterns):
            parameter.requires_grad_(False)
            frozen.append(name)
    return frozen
