"""Model facts from the header: experts, parameter counts, dtype distribution."""

from __future__ import annotations

from pathlib import Path

from pytest_dfqs.modelfile.demo import TinyModelSpec, build_tensors
from pytest_dfqs.modelfile.facts import active_parameters, model_facts
from pytest_dfqs.modelfile.header import read_header


def test_moe_facts(moe_model: Path) -> None:
    spec = TinyModelSpec()
    tensors = build_tensors(spec)
    total = sum(array.size for array in tensors.values())
    routed = sum(array.size for name, array in tensors.items() if "_exps" in name)
    facts = model_facts(read_header(moe_model))
    assert (facts.architecture, facts.block_count, facts.expert_count, facts.expert_used_count) == ("llama", 2, 4, 2)
    assert facts.total_parameters == total and facts.routed_parameters == routed
    assert facts.active_parameters == total - routed + routed * spec.n_expert_used // spec.n_expert
    assert facts.context_length == spec.context_length and facts.is_moe
    f16 = [a for a in tensors.values() if a.dtype.name == "float16"]
    assert facts.dtypes["f16"].tensors == len(f16) and facts.dtypes["f16"].bytes == sum(a.nbytes for a in f16)
    assert facts.dtypes["f32"].tensors == len(tensors) - len(f16)
    assert facts.file_size == moe_model.stat().st_size


def test_dense_facts(dense_model: Path) -> None:
    facts = model_facts(read_header(dense_model))
    assert facts.expert_count is None and not facts.is_moe
    assert facts.active_parameters == facts.total_parameters and facts.routed_parameters == 0


def test_active_parameters_of_a_deepseek_sized_model() -> None:
    # 284B total of which 270B routed over 256 experts with 6 used: 14B + 270B * 6 / 256
    assert active_parameters(284 * 10**9, 270 * 10**9, 256, 6) == 14 * 10**9 + 270 * 10**9 * 6 // 256
