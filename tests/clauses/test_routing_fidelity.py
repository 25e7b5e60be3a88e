"""Routing fidelity on real quantizations made by llama.cpp's own quantizer: the physics, self-agreement, refusals."""

from __future__ import annotations

import ctypes
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_dfqs.clauses.routing_fidelity import PRESERVED_OVERLAP, check_routing_fidelity, kl_lower_bound
from pytest_dfqs.model import ModelUnderTest, TraceOptions
from pytest_dfqs.modelfile.demo import TinyModelSpec, write_model
from pytest_dfqs.verdict import Finding, Status
from tests.conftest import Certification
from tests.machine_speed import llama_threads
from tests.reports.test_allure_report import read_results

pytestmark = pytest.mark.timeout(900)
FILE_TYPES = {"Q8_0": 7, "Q4_0": 2, "Q2_K": 10}  # LLAMA_FTYPE_MOSTLY_*


def quantize(source: Path, target: Path, file_type: int) -> Path:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = file_type, True
    assert llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) == 0
    return target


@pytest.fixture(scope="module")
def wide_moe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny MoE with 256-wide rows (K-quants need multiples of 256: narrower rows fall back to other types), and its quants."""
    folder = tmp_path_factory.mktemp("fidelity")
    base = folder / "wide-moe-f16.gguf"
    write_model(base, TinyModelSpec(n_embd=256, n_ff=256, context_length=4096), name="wide-moe")
    return {"F16": base, **{name: quantize(base, folder / f"wide-moe-{name}.gguf", ftype) for name, ftype in FILE_TYPES.items()}}


def fidelity(path: Path, reference: Path, plot: Path | None = None) -> tuple[Finding, ModelUnderTest]:
    model = ModelUnderTest(
        path, path.name, threads=llama_threads(), ctx=1024, trace_options=TraceOptions(reference=reference, fidelity_plot=plot)
    )
    model.runtime().loaded()  # loaded before: the comparison must unload it while the reference runs
    try:
        return check_routing_fidelity(model), model
    finally:
        model.close()


def figures(finding: Finding) -> dict[str, Any]:
    result: dict[str, Any] = finding.evidence["fidelity"]
    return result


def test_a_model_against_itself_has_kl_0_and_agreement_1(wide_moe: dict[str, Path]) -> None:
    finding, model = fidelity(wide_moe["F16"], wide_moe["F16"])
    assert finding.status == Status.MET
    measured = figures(finding)
    assert measured["kl"]["max"] == 0.0 and measured["same_top_token"] == 1.0
    assert all(value == 1.0 for layer in measured["experts_per_layer"].values() for value in layer.values())
    assert model.worker_view()["workers_started"] == 2  # stopped while the reference ran, then started again


def test_kl_rises_and_agreement_falls_as_bits_fall(wide_moe: dict[str, Path], tmp_path: Path) -> None:
    found = {name: fidelity(wide_moe[name], wide_moe["F16"], tmp_path / f"{name}.png")[0] for name in FILE_TYPES}
    kl = [figures(found[name])["kl"]["mean"] for name in FILE_TYPES]
    same_top = [figures(found[name])["same_top_token"] for name in FILE_TYPES]
    overlap = [found[name].evidence["mean_expert_overlap"] for name in FILE_TYPES]
    for name in FILE_TYPES:  # the fidelity table, with -s
        print(f"\nwide tiny MoE {name}: {found[name].summary}")
    assert 0 < kl[0] < kl[1] < kl[2]
    assert 1 >= same_top[0] > same_top[1] > same_top[2]
    assert 1 >= overlap[0] > overlap[1] > overlap[2]
    assert found["Q8_0"].status == Status.MET and overlap[0] >= PRESERVED_OVERLAP
    assert (tmp_path / "Q2_K.png").stat().st_size > 10_000


def test_a_dense_model_gets_its_next_token_figures_without_routing(smollm2: Path, tmp_path: Path) -> None:
    """SmolLM2 (Q4_1) against itself requantized to Q8_0 and Q2_K: KL and same top token move as the bits do."""
    q8, q2 = quantize(smollm2, tmp_path / "q8.gguf", FILE_TYPES["Q8_0"]), quantize(smollm2, tmp_path / "q2.gguf", FILE_TYPES["Q2_K"])
    close, far = fidelity(q8, smollm2)[0], fidelity(q2, smollm2)[0]
    print(f"\nSmolLM2 Q8_0: {close.summary}\nSmolLM2 Q2_K: {far.summary}")
    assert close.status == far.status == Status.NOT_APPLICABLE and "not a Mixture-of-Experts model" in close.summary
    assert figures(close)["kl"]["mean"] < figures(far)["kl"]["mean"] and figures(close)["same_top_token"] > figures(far)["same_top_token"]


def test_another_tokenizer_is_refused(wide_moe: dict[str, Path], smollm2: Path) -> None:
    finding, _ = fidelity(wide_moe["F16"], smollm2)
    assert finding.status == Status.NOT_EVALUATED and "not the same tokenizer" in finding.summary


def test_without_a_reference_the_check_says_what_it_needs(wide_moe: dict[str, Path]) -> None:
    model = ModelUnderTest(wide_moe["F16"], "m")
    finding = check_routing_fidelity(model)
    assert finding.status == Status.NOT_EVALUATED and "--dfqs-reference-model" in finding.summary


def test_the_kl_of_the_top_k_and_a_tail_bucket() -> None:
    """P = (0.5, 0.3 | rest 0.2), Q = (0.25, 0.25 | rest 0.5): the two-bucket sum, a lower bound of the full KL."""
    reference = {"logprobs": [math.log(0.5), math.log(0.3)], "rest": 0.2}
    expected = 0.5 * math.log(0.5 / 0.25) + 0.3 * math.log(0.3 / 0.25) + 0.2 * math.log(0.2 / 0.5)
    assert kl_lower_bound(reference, [math.log(0.25), math.log(0.25)]) == pytest.approx(expected)
    assert kl_lower_bound(reference, [math.log(0.5), math.log(0.3)]) == pytest.approx(0.0, abs=1e-12)


CARD = 'claims_format = 1\n[[claim]]\nfact = "routing_fidelity"\nvalue = ">= 90%"\nwhere = "preserves expert routing fidelity"\n'


def test_the_reference_model_option_through_the_plugin(
    certify: Certification, wide_moe: dict[str, Path], pytester: pytest.Pytester
) -> None:
    (pytester.path / "card.toml").write_text(CARD)
    result = certify.run(
        f"--dfqs-model={wide_moe['Q2_K']}",
        "--dfqs-tier=runtime",
        f"--dfqs-reference-model={wide_moe['F16']}",
        f"--dfqs-claims={pytester.path / 'card.toml'}",
        f"--alluredir={pytester.path / 'allure'}",
        "-k",
        "DFQS-10.1 or test_claim",
    )
    assert result.ret == 0  # a reference-profile clause: informational without --dfqs-profile reference
    result.stdout.fnmatch_lines(
        [
            "DFQS-10.1  info    NOT MET         against wide-moe-f16.gguf: mean expert-set overlap 0.* over 2 MoE layers*",
            "fidelity against wide-moe-f16.gguf: KL mean 0.0*",
            "MoE layer      overlap     top-1  weighted",
            "0 * 0.* 0.* 0.*",
        ]
    )
    finding = certify.clause("DFQS-10.1")["findings"][0]
    assert Path(finding["evidence"]["plot"]).name == "certificate-fidelity.png"
    (claim,) = certify.certificate()["models"][0]["claims"]  # a card's fidelity claim is decided by the same measurement
    assert claim["status"] == "NOT MET" and claim["evidence"]["measured"] == finding["evidence"]["mean_expert_overlap"]
    allure = next(r for r in read_results(pytester.path / "allure") if r["name"].startswith("DFQS-10.1"))
    assert "routing fidelity per layer" in [attachment["name"] for attachment in allure["attachments"]]


def test_a_fidelity_claim_below_the_runtime_tier_says_what_it_needs(
    certify: Certification, wide_moe: dict[str, Path], pytester: pytest.Pytester
) -> None:
    (pytester.path / "card.toml").write_text(CARD)
    assert certify.run(f"--dfqs-model={wide_moe['Q8_0']}", f"--dfqs-claims={pytester.path / 'card.toml'}", "-k", "test_claim").ret == 0
    (claim,) = certify.certificate()["models"][0]["claims"]
    assert claim["status"] == "NOT EVALUATED" and claim["summary"].startswith(
        "needs --dfqs-tier runtime (measured by check routing-fidelity)"
    )
