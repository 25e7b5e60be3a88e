"""DFQS-3.7: context beyond 64K. The header states what the model declares."""

from __future__ import annotations

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.verdict import Finding, Status

EXTENDED_CONTEXT = 65_536
FAR_CONTEXT = EXTENDED_CONTEXT + 256  # room for the prompt past 64K and the decoded tokens
FAR_DECODED = 8
FAR_BATCH = 2048
FILLER = "The experts of the model take turns, token after token, page after page. "


def check_declared_context(model: ModelUnderTest) -> Finding:
    facts = model.facts()
    declared = facts.context_length
    evidence = {"context_length": declared, "threshold": EXTENDED_CONTEXT}
    if declared is None:
        return Finding("declared-context", Status.NOT_MET, f"the header declares no {facts.architecture}.context_length", evidence)
    beyond = declared > EXTENDED_CONTEXT
    return Finding(
        "declared-context",
        Status.MET if beyond else Status.NOT_MET,
        f"declares a context of {declared:,} tokens ({'beyond' if beyond else 'not beyond'} {EXTENDED_CONTEXT:,})",
        evidence,
    )


def check_decode_past_64k(model: ModelUnderTest) -> Finding:
    """Fill 65,537 positions, then decode past them: a real decode beyond 64K, where memory allows."""
    declared = model.facts().context_length
    if not declared or declared <= EXTENDED_CONTEXT:
        return Finding(
            "decode-past-64k",
            Status.NOT_APPLICABLE,
            f"the model declares a context of {declared or 0:,} tokens: nothing beyond {EXTENDED_CONTEXT:,} to try",
        )
    runtime = model.runtime()
    runtime.loaded()
    runtime.preflight(FAR_CONTEXT, FAR_BATCH, advice="free memory to decode past 64K")
    model.announce(f"{model.label}: filling {EXTENDED_CONTEXT + 1:,} positions of context to decode past 64K (minutes on a CPU)")
    filler = runtime.request("tokenize", text=FILLER, add_special=False)
    prompt = (filler * (EXTENDED_CONTEXT // len(filler) + 2))[: EXTENDED_CONTEXT + 1]
    run = runtime.request(
        "evaluate",
        prompts=[],
        token_prompts=[prompt],
        n_predict=FAR_DECODED,
        n_ctx=FAR_CONTEXT,
        n_threads=runtime.options.threads,
        n_batch=FAR_BATCH,
        n_ubatch=512,
        trace=False,
    )
    last_position = len(prompt) + FAR_DECODED - 2
    evidence = {
        "prompt_tokens": len(prompt),
        "last_position": last_position,
        "n_ctx": FAR_CONTEXT,
        "prompt_seconds": run["prompt_seconds"],
        "decode_seconds": run["decode_seconds"],
        "nonfinite_steps": run["nonfinite_steps"],
    }
    if run["nonfinite_steps"]:
        return Finding(
            "decode-past-64k",
            Status.NOT_MET,
            f"decoding past position {EXTENDED_CONTEXT:,} gave non-finite logits at {run['nonfinite_steps']} steps",
            evidence,
        )
    return Finding(
        "decode-past-64k",
        Status.MET,
        f"decoded {FAR_DECODED} tokens up to position {last_position:,} with finite logits"
        f" ({len(prompt):,}-token prompt in {run['prompt_seconds']:.1f} s)",
        evidence,
    )
