"""What a token's attention costs at each position, from the header alone, in units of the token's weights' work.

A token's weights cost the same wherever it sits; its attention grows with the positions before it: per layer
2 x heads x (key + value length) multiply-adds for each position it attends, against 2 x the active parameters
for the weights. On SmolLM2 the attention of the 8,192th token is about twice its weights' work, and an 8K
prompt takes about twice its first batch's rate. A layer with a sliding window attends the window at most;
DeepSeek-V4's layers (`attention.compress_ratios`) attend their window plus one compressed entry per `ratio`
positions before it (ratio 0: the window alone). A header that names a window but not which layers have one
(Gemma 3: llama.cpp's own rule) is counted as windowed in every layer. An estimate for the work plan, charged at
the weights' measured rate, not a model of llama.cpp's kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf.constants import Keys

from .facts import ModelFacts, metadata_count
from .header import ArrayValue, GGUFHeader, MetadataValue


@dataclass(frozen=True)
class Layer:
    share: float  # one attended position's work, in tokens of weights' work
    window: int  # 0: every position before the token
    ratio: int  # DeepSeek-V4: one compressed entry per `ratio` positions beyond the window; 0: none


@dataclass(frozen=True)
class Attention:
    layers: tuple[Layer, ...]

    def work(self, start: int, count: int) -> float:
        """The attention of `count` tokens at positions start, start + 1, ...: in tokens of weights' work."""
        return sum(layer.share * _attended(start, start + max(count, 0), layer) for layer in self.layers)


def attention(header: GGUFHeader, facts: ModelFacts) -> Attention:
    """The model's attention as its header describes it; none (no charge) when the header does not say enough."""
    blocks = facts.block_count or 0
    heads = _per_layer(header.arch_value(Keys.Attention.HEAD_COUNT), blocks)
    ratios = _per_layer(header.arch_value("{arch}.attention.compress_ratios"), blocks)
    embedding = metadata_count(header.arch_value(Keys.LLM.EMBEDDING_LENGTH)) or 0
    window = metadata_count(header.arch_value(Keys.Attention.SLIDING_WINDOW)) or 0
    if not blocks or not facts.active_parameters or not all(heads):
        return Attention(())
    key = metadata_count(header.arch_value(Keys.Attention.KEY_LENGTH))
    value = metadata_count(header.arch_value(Keys.Attention.VALUE_LENGTH))
    layers = []
    for head_count, ratio in zip(heads, ratios):
        per_head = (key or embedding // head_count) + (value or embedding // head_count)  # the embedding split among heads by default
        layers.append(Layer(head_count * per_head / facts.active_parameters, window, ratio))
    return Attention(tuple(layers))


def _per_layer(value: MetadataValue | None, blocks: int) -> list[int]:
    """A count the header gives once for all layers or as an array of one per layer (absent or malformed: 0 each)."""
    if isinstance(value, ArrayValue):
        listed = [metadata_count(item) or 0 for item in value.values or ()]
        return listed if len(listed) == blocks else [0] * blocks
    return [metadata_count(value) or 0] * blocks


def _attended(start: int, end: int, layer: Layer) -> float:
    """The positions tokens start .. end - 1 attend, summed (a token attends itself and every position before it)."""
    every = _triangle(end) - _triangle(start)
    if not layer.window:
        return every
    near = _triangle(min(end, layer.window)) - _triangle(min(start, layer.window))
    near += layer.window * (end - max(start, layer.window)) if end > layer.window else 0
    return near + (every / layer.ratio if layer.ratio else 0.0)


def _triangle(tokens: int) -> int:
    """The positions tokens 0 .. tokens - 1 attend, summed: 1 + 2 + ... + tokens."""
    return tokens * (tokens + 1) // 2
