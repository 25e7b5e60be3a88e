"""DFQS-3.3: expert routing. The static part checks that routing is well formed.

Determinism itself needs llama.cpp (runtime tier); from the header we can say
whether the model routes at all, and whether every MoE layer has a router over
exactly the experts its expert tensors hold.
"""

from __future__ import annotations

from gguf.constants import Keys

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.facts import is_routed_expert, moe_layers
from pytest_dfqs.modelfile.header import GGUFHeader
from pytest_dfqs.verdict import Finding, Status

ROUTERS = ("ffn_gate_inp.weight", "ffn_gate_tid2eid.weight")


def check_router_structure(model: ModelUnderTest) -> Finding:
    facts = model.facts()
    if not facts.is_moe and moe_layers(model.header()):
        key = Keys.LLM.EXPERT_COUNT.format(arch=facts.architecture)
        return Finding(
            "router-structure",
            Status.NOT_MET,
            f"the file has routed expert tensors (*_exps) but {key} is {model.header().metadata.get(key)!r}: llama.cpp cannot route them",
        )
    if not facts.is_moe:
        return Finding(
            "router-structure",
            Status.NOT_APPLICABLE,
            f"not a Mixture-of-Experts model ({facts.architecture}.expert_count is {facts.expert_count}): there is no expert routing",
        )
    problems = router_problems(model.header(), facts.expert_count or 0, facts.expert_used_count)
    layers = sorted(moe_layers(model.header()))
    evidence = {
        "moe_layers": layers,
        "expert_count": facts.expert_count,
        "expert_used_count": facts.expert_used_count,
        "problems": problems[:10],
    }
    if problems:
        return Finding("router-structure", Status.NOT_MET, problems[0], evidence)
    return Finding(
        "router-structure",
        Status.MET,
        f"{len(layers)} MoE layers route {facts.expert_used_count} of {facts.expert_count} experts per token",
        evidence,
    )


def router_problems(header: GGUFHeader, expert_count: int, expert_used: int | None) -> list[str]:
    problems = []
    if expert_used is None or not 1 <= expert_used <= expert_count:
        problems.append(
            f"{Keys.LLM.EXPERT_USED_COUNT.format(arch=header.architecture)} is {expert_used}, must be within [1, {expert_count}]"
        )
    layers = moe_layers(header)
    if not layers:
        problems.append(f"expert_count is {expert_count} but no routed expert tensors (*_exps) are present")
    names = {t.name: t for t in header.tensors}
    for layer in sorted(layers):
        if not any(f"blk.{layer}.{router}" in names for router in ROUTERS):
            problems.append(f"MoE layer {layer} has no router tensor (blk.{layer}.ffn_gate_inp.weight)")
        router = names.get(f"blk.{layer}.ffn_gate_inp.weight")
        if router is not None and len(router.shape) != 2:
            problems.append(f"{router.name} has shape {list(router.shape)}: a router is 2-D, [n_embd, n_expert]")
        elif router is not None and router.shape[-1] != expert_count:
            problems.append(f"{router.name} has shape {list(router.shape)}: it scores {router.shape[-1]} experts, not {expert_count}")
    for tensor in header.tensors:
        if is_routed_expert(tensor) and (len(tensor.shape) != 3 or tensor.shape[2] != expert_count):
            problems.append(f"{tensor.name} has shape {list(tensor.shape)}: expected {expert_count} experts in its third dimension")
    return problems
