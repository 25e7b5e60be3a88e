"""Quantization recipes: read as llama-quantize reads --tensor-type-file, checked tensor by tensor.

Which tensors a recipe governs is llama-quantize's rule; the differential test
lets llama.cpp's own quantizer show it.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
from gguf.constants import GGMLQuantizationType as T

from pytest_dfqs.claims.claims_file import RECIPES_DIR
from pytest_dfqs.claims.recipe import RecipeError, check_recipe, quantizable, read_recipe
from pytest_dfqs.modelfile.header import read_header
from pytest_dfqs.verdict import Status
from tests.tiny_deepseek4 import write_tiny_deepseek4


def recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.txt"
    path.write_text(text)
    return path


def test_entries_are_whitespace_separated_lower_cased_and_the_first_match_decides(tmp_path: Path) -> None:
    read = read_recipe(recipe(tmp_path, "BLK\\.[0-5]\\.FFN_DOWN_EXPS=Q2_K blk\\.\\d+\\.ffn_down_exps=iq1_m\n\nattn=q8_0\n"))
    assert [rule.pattern for rule in read.rules] == ["blk\\.[0-5]\\.ffn_down_exps", "blk\\.\\d+\\.ffn_down_exps", "attn"]
    assert read.rule_for("blk.3.ffn_down_exps.weight").type == T.Q2_K  # type: ignore[union-attr]
    assert read.rule_for("blk.13.ffn_down_exps.weight").type == T.IQ1_M  # type: ignore[union-attr]
    assert read.rule_for("blk.0.attn_q_b.weight").type == T.Q8_0  # type: ignore[union-attr]
    assert read.rule_for("token_embd.weight") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# a comment\nattn=q8_0", "'#' is not pattern=type"),
        ("attn=q9_9", "'q9_9' is not a ggml type"),
        ("=q8_0", "is not pattern=type"),
        ("attn=", "is not pattern=type"),
        ("blk\\.(=q8_0", "the pattern is not a regular expression"),
        ("\n  \n", "no pattern=type entries"),
    ],
)
def test_what_llama_quantize_would_refuse_is_refused_with_the_entry(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        read_recipe(recipe(tmp_path, text))


def test_every_shipped_recipe_reads() -> None:
    shipped = sorted(RECIPES_DIR.glob("*.txt"))
    assert [path.stem for path in shipped] == ["ds4-q2", "ds4-q4", "dsv4-dynamic-iq1m-routed-experts"]
    assert [len(read_recipe(path).rules) for path in shipped] == [8, 8, 4]


def test_a_recipe_violation_on_a_ds4_layout_model_names_the_offending_tensors(tmp_path: Path) -> None:
    """The tiny DeepSeek-V4 is all F32 (and F16 where llama.cpp wants it): the ds4 q2 recipe names what differs.

    Its 128-wide expert rows do not divide into IQ2_XXS or Q2_K blocks of 256: llama-quantize would
    fall back to another type there, so those are reported as fallbacks, not as violations.
    """
    path = tmp_path / "tiny-deepseek4.gguf"
    write_tiny_deepseek4(path)
    header = read_header(path)
    status, summary, evidence = check_recipe(read_recipe(RECIPES_DIR / "ds4-q2.txt"), header)
    assert status == Status.NOT_MET
    wrong = {m["tensor"]: (m["expected"], m["found"]) for m in evidence["mismatches"]}
    assert wrong["blk.1.attn_q_b.weight"] == ("q8_0", "f32")
    assert wrong["blk.0.ffn_up_shexp.weight"] == ("q8_0", "f32")
    assert wrong["output.weight"] == ("q8_0", "f32")
    assert "blk.0.attn_q_a.weight f32 (recipe: q8_0)" in summary
    fallbacks = {m["tensor"]: m["expected"] for m in evidence["fallbacks"]}
    assert fallbacks["blk.0.ffn_gate_exps.weight"] == "iq2_xxs" and fallbacks["blk.3.ffn_down_exps.weight"] == "q2_k"
    assert not any("norm" in name or "ffn_gate_inp" in name for name in wrong)  # llama-quantize never converts those
    assert evidence["not_governed"] > 0


def test_a_file_the_recipe_does_not_reach_is_not_met(tmp_path: Path) -> None:
    path = tmp_path / "tiny-deepseek4.gguf"
    write_tiny_deepseek4(path)
    status, summary, _ = check_recipe(read_recipe(recipe(tmp_path, "no_such_tensor=q8_0")), read_header(path))
    assert status == Status.NOT_MET and "no tensor of the file is governed" in summary


@pytest.mark.timeout(300)
def test_which_tensors_a_recipe_governs_agrees_with_llama_cpps_quantizer(tmp_path: Path) -> None:
    """llama.cpp quantizes the all-F32 tiny DeepSeek-V4 to Q8_0: the tensors it converted are exactly those we call governed."""
    import llama_cpp

    source, quantized = tmp_path / "f32.gguf", tmp_path / "q8_0.gguf"
    write_tiny_deepseek4(source)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    assert llama_cpp.llama_model_quantize(str(source).encode(), str(quantized).encode(), ctypes.byref(params)) == 0
    before = {t.name: t for t in read_header(source).tensors}
    after = read_header(quantized)
    converted = {t.name for t in after.tensors if t.ggml_type != before[t.name].ggml_type}
    governed = {t.name for t in after.tensors if quantizable(before[t.name])}
    assert converted and converted == governed
    status, _, evidence = check_recipe(read_recipe(recipe(tmp_path, ".=q8_0")), after)
    assert status == Status.MET and evidence["governed"] == len(governed)
