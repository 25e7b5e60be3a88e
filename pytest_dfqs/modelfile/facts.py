"""Model facts computed from the GGUF header alone.

What a model card claims (experts, parameters, size, dtype mix) is checked
against these numbers; nothing here reads tensor data.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from gguf.constants import Keys

from .header import GGUFHeader, TensorInfo

BLOCK = re.compile(r"blk\.(\d+)\.")


@dataclass(frozen=True)
class DtypeShare:
    """How many tensors, and how many bytes, one ggml type accounts for."""

    tensors: int
    bytes: int


@dataclass(frozen=True)
class ModelFacts:
    architecture: str | None
    name: str | None
    block_count: int | None
    expert_count: int | None
    expert_used_count: int | None
    expert_shared_count: int | None
    context_length: int | None
    total_parameters: int
    active_parameters: int
    routed_parameters: int
    tensor_count: int
    dtypes: dict[str, DtypeShare]
    file_size: int
    gguf_version: int

    @property
    def is_moe(self) -> bool:
        return (self.expert_count or 0) > 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_routed_expert(tensor: TensorInfo) -> bool:
    """Routed expert weights are the merged 3D `*_exps` tensors (shared experts are `*_shexp`)."""
    return "_exps." in tensor.name


def block_index(tensor: TensorInfo) -> int | None:
    """The transformer block a tensor belongs to (`blk.<n>.`), None for the others."""
    match = BLOCK.match(tensor.name)
    return int(match[1]) if match else None


def blocks_present(header: GGUFHeader) -> int:
    """How many blocks the file holds tensors for: one past the highest block index."""
    indexes = [index for t in header.tensors if (index := block_index(t)) is not None]
    return max(indexes) + 1 if indexes else 0


def moe_layers(header: GGUFHeader) -> set[int]:
    """The blocks that hold routed expert tensors."""
    return {index for t in header.tensors if is_routed_expert(t) and (index := block_index(t)) is not None}


def model_facts(header: GGUFHeader) -> ModelFacts:
    """Everything the terminal header block and the certificate state about a model."""
    expert_count = metadata_count(header.arch_value(Keys.LLM.EXPERT_COUNT))
    expert_used = metadata_count(header.arch_value(Keys.LLM.EXPERT_USED_COUNT))
    total = sum(t.n_elements for t in header.tensors)
    routed = sum(t.n_elements for t in header.tensors if is_routed_expert(t))
    return ModelFacts(
        architecture=header.architecture,
        name=_str(header.metadata.get(Keys.General.NAME)),
        block_count=metadata_count(header.arch_value(Keys.LLM.BLOCK_COUNT)),
        expert_count=expert_count,
        expert_used_count=expert_used,
        expert_shared_count=metadata_count(header.arch_value(Keys.LLM.EXPERT_SHARED_COUNT)),
        context_length=metadata_count(header.arch_value(Keys.LLM.CONTEXT_LENGTH)),
        total_parameters=total,
        active_parameters=active_parameters(total, routed, expert_count, expert_used),
        routed_parameters=routed,
        tensor_count=len(header.tensors),
        dtypes=dtype_distribution(header.tensors),
        file_size=header.file_size,
        gguf_version=header.version,
    )


def active_parameters(total: int, routed: int, expert_count: int | None, expert_used: int | None) -> int:
    """Non-routed parameters plus the used share of the routed ones."""
    if not expert_count or expert_used is None or routed == 0:
        return total
    return total - routed + routed * min(expert_used, expert_count) // expert_count


@dataclass(frozen=True)
class ParameterCount:
    """Total and active parameters as one counting convention counts them."""

    convention: str
    total: int
    active: int


# How publishers count: with or without the input embedding and the output head (a lookup table and
# a projection that some leave out of "parameters"). llama.cpp's own count (llama_model_n_params) is the first.
COUNTING_CONVENTIONS: tuple[tuple[str, frozenset[str]], ...] = (
    ("every tensor", frozenset()),
    ("without the input embedding", frozenset({"token_embd.weight"})),
    ("without the output head", frozenset({"output.weight"})),
    ("without the input embedding and the output head", frozenset({"token_embd.weight", "output.weight"})),
)


def parameter_counts(header: GGUFHeader) -> tuple[ParameterCount, ...]:
    """Total and active parameters under each documented counting convention."""
    facts = model_facts(header)
    counts = []
    for convention, left_out in COUNTING_CONVENTIONS:
        total = facts.total_parameters - sum(t.n_elements for t in header.tensors if t.name in left_out)
        active = active_parameters(total, facts.routed_parameters, facts.expert_count, facts.expert_used_count)
        counts.append(ParameterCount(convention, total, active))
    return tuple(counts)


def dtype_distribution(tensors: tuple[TensorInfo, ...]) -> dict[str, DtypeShare]:
    """Tensor count and bytes per ggml type, as the dynamic IQ1_M card publishes it."""
    shares: dict[str, DtypeShare] = {}
    for tensor in tensors:
        name = tensor.type_name.lower()
        previous = shares.get(name, DtypeShare(0, 0))
        shares[name] = DtypeShare(previous.tensors + 1, previous.bytes + tensor.nbytes)
    return dict(sorted(shares.items()))


def metadata_count(value: Any) -> int | None:
    """A count from the metadata; anything but a non-negative integer counts as absent."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
