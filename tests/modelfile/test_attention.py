"""A model's attention from its header (the work plan's charge for long prompts): real headers of each shape, and
headers that say too little or lie."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from pytest_dfqs.modelfile.attention import Attention, attention
from pytest_dfqs.modelfile.facts import ModelFacts, model_facts
from pytest_dfqs.modelfile.header import read_header

FAR = 100_000  # a position past every window


def shape_of(path: Path) -> tuple[Attention, ModelFacts]:
    header = read_header(path)
    return attention(header, model_facts(header)), model_facts(header)


def test_a_dense_models_token_attends_every_position_before_it(smollm2: Path) -> None:
    """SmolLM2: 30 layers of 9 heads of 64 (576 / 9, no key_length in its header), no window: the token at position
    8,191 attends 8,192 positions in each layer, 9 x (64 + 64) multiply-adds each, against its active parameters."""
    heed, facts = shape_of(smollm2)
    assert len(heed.layers) == 30 and {layer.window for layer in heed.layers} == {0}
    assert heed.work(8191, 1) == pytest.approx(30 * 9 * 128 * 8192 / facts.active_parameters)
    assert heed.work(0, 8192) == pytest.approx(sum(heed.work(position, 1) for position in range(8192)))
    assert 1.5 < heed.work(8191, 1) < 2.5  # deep in an 8K prompt a token's attention is about twice its weights


def test_a_sliding_window_caps_what_a_token_attends(gemma3: Path) -> None:
    """Gemma 3's header names a 512-token window (and not which layers have one: all are counted windowed)."""
    heed, _ = shape_of(gemma3)
    assert {layer.window for layer in heed.layers} == {512}
    assert heed.work(FAR, 1) == pytest.approx(heed.work(511, 1)) and heed.work(100, 1) < heed.work(511, 1)
    assert heed.work(0, 2048) == pytest.approx(heed.work(0, 512) + 1536 * heed.work(511, 1))


def test_deepseek4s_compressed_layers_attend_their_window_and_one_entry_per_ratio(deepseek4_model: Path) -> None:
    """The tiny deepseek4's compress_ratios (0, 0, 4, 128) and its 128-token window, per layer."""
    heed, _ = shape_of(deepseek4_model)
    assert [(layer.window, layer.ratio) for layer in heed.layers] == [(128, 0), (128, 0), (128, 4), (128, 128)]
    share = heed.layers[0].share
    assert [layer.share for layer in heed.layers] == [share] * 4
    assert heed.work(FAR, 1) == pytest.approx(share * (4 * 128 + (FAR + 1) / 4 + (FAR + 1) / 128))


def header_with(path: Path, **values: object) -> Path:
    """A two-layer llama header with these attention keys (None: left out) and one small tensor."""
    writer = GGUFWriter(path, "llama")
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    for key, value in values.items():
        if value is not None:
            getattr(writer, f"add_{key}")(value)
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    "values",
    [{"head_count": None}, {"head_count": 0}, {"head_count": [4, 4, 4]}, {"head_count": [4, 0]}],
    ids=["no head count", "zero heads", "an array of the wrong length", "a layer of no heads"],
)
def test_a_header_that_says_too_little_charges_no_attention(tmp_path: Path, values: dict[str, object]) -> None:
    heed, _ = shape_of(header_with(tmp_path / "model.gguf", **values))
    assert heed.layers == () and heed.work(0, 10_000) == 0


def test_heads_given_per_layer_are_read_per_layer(tmp_path: Path) -> None:
    heed, facts = shape_of(header_with(tmp_path / "model.gguf", head_count=[4, 8], key_length=16, value_length=16))
    assert [layer.share for layer in heed.layers] == [4 * 32 / facts.active_parameters, 8 * 32 / facts.active_parameters]
