"""Derive llama.cpp's tensor inventory per architecture from the source that llama-cpp-python vendors.

llama.cpp's loader creates a model's tensors by name (`create_tensor(tn(LLM_TENSOR_X,
"weight", i), ...)` in src/models/<arch>.cpp and in the shared helpers of
src/llama-model.cpp) and refuses a file that holds a tensor it did not create. The
names an architecture can create are therefore a fact of the source: this script
reads them out of the pinned llama-cpp-python sdist (fetched with pip, never at the
plugin's run time) and writes conformance/llama-cpp-loader.json, which the static
tier's `loader-rules` check uses. An architecture whose loader is not defined in a
models/*.cpp file of its own (one that borrows another's) is left out, and the rule
says nothing about it.

    python -m tests.llama_cpp_source conformance/llama-cpp-loader.json
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"
SDIST = f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"
SOURCE = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/src/"
TENSOR_NAME = re.compile(r'\{\s*(LLM_TENSOR_\w+)\s*,\s*"([^"]+)"\s*\}')
ARCH_NAME = re.compile(r'\{\s*(LLM_ARCH_\w+)\s*,\s*"([^"]+)"\s*\}')
ARCH_CLASS = re.compile(r"case (LLM_ARCH_\w+):\s*return new (llama_model_\w+)\(params\);")
TN_CALL = re.compile(r'\btn\(\s*(LLM_TENSOR_\w+)\s*(?:,\s*"(\w+)")?')
LOADER = re.compile(r"void (llama_model_\w+)::load_arch_tensors\(")
HELPER = re.compile(r"void llama_model_base::(create_tensor_\w+)\(")
HELPER_CALL = re.compile(r"\b(create_tensor_\w+)\(")
TOKENIZER = re.compile(r'tokenizer_model == "(\w+)"')
KV_NAME = re.compile(r'\{\s*(LLM_KV_\w+)\s*,\s*"([^"]+)"\s*\}')
HPARAMS = re.compile(r"void (llama_model_\w+)::load_arch_hparams\(")
GENERIC_HPARAMS = re.compile(r"void (llama_model_base)::load_hparams\(")
KEY_CALL = re.compile(r"\bml\.(get_key|get_key_or_arr|get_arr_n|get_arr)\(")
CREATE = re.compile(r'create_tensor\(\s*tn\(\s*(LLM_TENSOR_\w+)\s*(?:,\s*"(\w+)")?[^)]*\)\s*,\s*\{([^}]*)\}\s*,?([^;]*);')
LOCAL = re.compile(r"\bconst\s+(?:int64_t|int|uint32_t)\s+(\w+)\s*=\s*([^;]+);")
FIELD_READ = re.compile(r"\bml\.(?:get_key|get_key_or_arr)\(\s*(LLM_KV_\w+)\s*,\s*hparams\.(\w+)")
ARRAY_READ = re.compile(r"\bml\.get_arr\(\s*(LLM_KV_\w+)\s*,\s*hparams\.(\w+)")
REFERENCE = re.compile(r"\b(?:hparams|vocab)\.\w+(?:\(\))?|\b[A-Za-z_]\w*\b")
ARITHMETIC = re.compile(r"[\w\s+\-*/()]+")
INDEXED = re.compile(r"[\w\s+\-*/()\[\]=!<>]+")  # arithmetic with per-layer values indexed by the block, compared
TERNARY = re.compile(r"(?P<test>[^?:]+?)\s*\?\s*(?P<yes>[^?:]+?)\s*:\s*(?P<no>[^?:]+)")  # one level, no nesting
CAST = re.compile(r"\((?:size_t|u?int(?:8|16|32|64)_t|int)\)\s*")
# The hparams accessors LLAMA_LOAD_LOCALS and the loaders use (llama-hparams.cpp), by the names
# pytest_dfqs.clauses.loader_rules gives their values; an accessor with an argument (a layer) is not one.
ACCESSORS = {
    "hparams.n_embd": "n_embd",
    "vocab.n_tokens()": "n_vocab",
    "hparams.n_head()": "n_head",
    "hparams.n_head_kv()": "n_head_kv",
    "hparams.n_embd_head_k()": "n_embd_head_k",
    "hparams.n_embd_head_v()": "n_embd_head_v",
    "hparams.n_embd_k_gqa()": "n_embd_k_gqa",
    "hparams.n_embd_v_gqa()": "n_embd_v_gqa",
    "hparams.n_ff()": "n_ff",
    "hparams.n_ff_exp()": "n_ff_exp",
    "hparams.n_expert": "n_expert",
    "hparams.n_expert_used()": "n_expert_used",
    "hparams.n_rot()": "n_rot",
}
# The hparams fields behind each accessor: an architecture whose hyperparameter loader touches one
# sets that value its own way, and its shapes in that name are left to the runtime tier.
BEHIND = {
    "n_head": ("n_head_arr",),
    "n_head_kv": ("n_head_arr", "n_head_kv_arr"),
    "n_embd_head_k": ("n_head_arr", "n_embd_head_k_full", "n_embd_head_k_swa"),
    "n_embd_head_v": ("n_head_arr", "n_embd_head_v_full", "n_embd_head_v_swa"),
    "n_embd_k_gqa": ("n_head_arr", "n_head_kv_arr", "n_embd_head_k_full", "n_embd_head_k_swa"),
    "n_embd_v_gqa": ("n_head_arr", "n_head_kv_arr", "n_embd_head_v_full", "n_embd_head_v_swa"),
    "n_rot": ("n_head_arr", "n_embd_head_k_full", "n_rot_full", "n_rot_swa"),
    "n_expert_used": ("n_expert_used_arr",),
}
SHADOWED = re.compile(r"\b(?:int64_t|int|uint32_t|auto|size_t)\s+(?:n_embd|n_vocab|n_expert|n_ff)\s*=|n_ff_arr\[[^\]]*\]\s*=[^=]")
TOKENIZER_BRANCH = re.compile(r'if \(((?:\s*(?:\|\|)?\s*tokenizer_model == "\w+")+)\s*\)\s*\{')
MERGES_EXEMPT = re.compile(r'tokenizer_pre == "([\w-]+)"')
GATING_CHECK = re.compile(r"if \(hparams\.expert_gating_func != (LLAMA_EXPERT_GATING_FUNC_TYPE_\w+)\)\s*\{\s*throw")
ROPE_CHECK = re.compile(
    r"if \(((?:\s*arch == LLM_ARCH_\w+\s*(?:\|\|)?)+)\)\s*\{\s*if \(hparams\.n_rot_full != hparams\.n_embd_head_k_full\)"
)
REQUIRED_ARGUMENTS = {"get_key": 2, "get_key_or_arr": 3, "get_arr_n": 2, "get_arr": 2}  # one more: the `required` flag
GENERIC_SOURCES = ("llama-model.cpp", "llama-vocab.cpp", "llama-model-loader.cpp")  # where keys of every architecture are read
TYPED_READ = re.compile(r"\b(?:ml\.)?(get_key_or_arr|get_key|get_arr)\(\s*(LLM_KV_\w+|std::get<0>\(it\))\s*,")
SPECIAL_TOKEN_KEYS = re.compile(r"\{\s*(LLM_KV_TOKENIZER_\w+_ID)\s*,\s*special_\w+\s*\}")
DECLARATION = (
    r"(?:std::array<\s*(?P<array>[\w:]+)\s*,[^>]*>|std::vector<\s*(?P<vector>[\w:]+)\s*>"
    r"|(?P<scalar>bool|float|double|u?int(?:8|16|32|64)_t|std::string|(?:enum\s+)?llama_pooling_type))\s*&?\s+{name}\s*[;=,)\[]"
)
GGUF_TYPES = {  # the GGUF type llama.cpp's get_key asks for, by the C++ type it reads into (llama-model-loader.cpp's GKV_Base)
    "bool": "BOOL",
    "float": "FLOAT32",
    "double": "FLOAT64",
    "uint8_t": "UINT8",
    "uint16_t": "UINT16",
    "uint32_t": "UINT32",
    "int32_t": "INT32",
    "uint64_t": "UINT64",
    "int64_t": "INT64",
    "std::string": "STRING",
    "llama_pooling_type": "UINT32",  # read through a uint32_t
    "enum llama_pooling_type": "UINT32",
}


def fetch_sdist(folder: Path) -> Path:
    """The pinned sdist, downloaded with pip (its cache makes a second run free). Only llama-cpp-python is asked for as
    source: `--no-binary :all:` would build its build requirements from source too, 6 minutes instead of 8 s."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python", "--quiet", "-d", str(folder)]
    subprocess.run([*command, f"llama-cpp-python=={LLAMA_CPP_PYTHON}"], check=True)
    return folder / SDIST


def read_sources(sdist: Path) -> dict[str, str]:
    """src/llama-arch.cpp, -model.cpp, -model.h, -hparams.h, -vocab.cpp and src/models/*.cpp, by path below src/."""
    sources = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            name = member.name.removeprefix(SOURCE)
            wanted = name in GENERIC_SOURCES + ("llama-arch.cpp", "llama-model.h", "llama-hparams.h") or re.fullmatch(
                r"models/[\w-]+\.cpp", name
            )
            if member.name.startswith(SOURCE) and wanted:
                handle = archive.extractfile(member)
                assert handle is not None
                sources[name] = handle.read().decode("utf-8")
    return sources


@dataclass(frozen=True)
class LlamaSource:
    """The parts of llama.cpp's source the rules come from, with the name tables they all use."""

    files: dict[str, str]

    @cached_property
    def tensor_templates(self) -> dict[str, str]:
        """LLM_TENSOR_X -> "blk.%d.attn_norm"."""
        arch = self.files["llama-arch.cpp"]
        return dict(TENSOR_NAME.findall(arch[arch.index("LLM_TENSOR_NAMES") :]))

    @cached_property
    def arch_names(self) -> dict[str, str]:
        """LLM_ARCH_X -> "llama"."""
        arch = self.files["llama-arch.cpp"]
        return dict(ARCH_NAME.findall(arch[: arch.index("LLM_KV_NAMES")]))

    @cached_property
    def classes(self) -> dict[str, str]:
        """llama_model_x -> LLM_ARCH_X: which class loads which architecture."""
        return {cls: arch for arch, cls in ARCH_CLASS.findall(self.files["llama-model.cpp"])}

    @cached_property
    def helpers(self) -> dict[str, str]:
        """Name -> body of the shared create_tensor_* helpers of llama-model.cpp."""
        return _bodies(self.files["llama-model.cpp"], HELPER)

    def model_files(self) -> Iterator[tuple[str, list[str]]]:
        """(source, architecture names) of every models/*.cpp file that defines a loader of its own."""
        for path, source in sorted(self.files.items()):
            archs = [self.arch_names[self.classes[cls]] for cls in LOADER.findall(source) if cls in self.classes]
            if path.startswith("models/") and archs:
                yield source, archs

    def helped(self, source: str) -> str:
        """The bodies of the shared helpers a file calls."""
        return "".join(self.helpers.get(name, "") for name in set(HELPER_CALL.findall(source)))

    @cached_property
    def helper_parameters(self) -> dict[str, list[str]]:
        """Helper name -> its parameter names, in order."""
        model = self.files["llama-model.cpp"]
        found = {}
        for match in HELPER.finditer(model):
            arguments, _ = _arguments(model, match.end())
            found[match[1]] = [argument.split()[-1].lstrip("&*") for argument in arguments]
        return found

    def inlined(self, code: str) -> str:
        """`code` with each shared helper's call replaced by its body, the call's arguments in place of its parameters."""
        parts, position = [], 0
        for call in HELPER_CALL.finditer(code):
            if call.start() < position:
                continue
            arguments, end = _arguments(code, call.end())
            parts += [code[position : call.start()], "{", self._substituted(call[1], arguments), "}"]
            position = end + 1 if code[end : end + 1] == ";" else end
        return "".join([*parts, code[position:]])

    def _substituted(self, helper: str, arguments: list[str]) -> str:
        body = self.helpers.get(helper, "")
        for parameter, argument in zip(self.helper_parameters.get(helper, []), arguments):
            value = argument if re.fullmatch(r"\w+", argument) else f"({argument})"
            body = re.sub(rf"\b{re.escape(parameter)}\b", lambda _, value=value: value, body)
        return body

    def called_helpers(self, code: str) -> str:
        """Each helper call of `code` as the helper's body with the call's arguments in place of its parameters."""
        bodies = []
        for call in HELPER_CALL.finditer(code):
            arguments, _ = _arguments(code, call.end())
            body = self.helpers.get(call[1], "")
            for parameter, argument in zip(self.helper_parameters.get(call[1], []), arguments):
                value = argument if re.fullmatch(r"\w+", argument) else f"({argument})"
                body = re.sub(rf"\b{re.escape(parameter)}\b", lambda _, value=value: value, body)
            bodies.append(body)
        return "".join(bodies)

    @cached_property
    def load_locals(self) -> dict[str, str]:
        """The constants LLAMA_LOAD_LOCALS defines for every loader (n_embd = hparams.n_embd, ...), as written."""
        macro = self.files["llama-model.h"]
        return dict(LOCAL.findall(macro[macro.index("#define LLAMA_LOAD_LOCALS") :].split("\n\n", 1)[0]))

    @cached_property
    def kv_names(self) -> dict[str, str]:
        """LLM_KV_X -> "%s.attention.q_lora_rank"."""
        arch = self.files["llama-arch.cpp"]
        return dict(KV_NAME.findall(arch[arch.index("LLM_KV_NAMES") :]))

    def name(self, tensor: str, suffix: str) -> str:
        template = self.tensor_templates[tensor].replace("%d", "{bid}", 1).replace("%d", "{xid}", 1)
        return f"{template}.{suffix}" if suffix else template


def tensor_inventory(source: LlamaSource) -> dict[str, list[str]]:
    """Architecture name -> the tensor name templates its loader can create ("blk.{bid}.attn_norm.weight").

    Every tensor name a models/<arch>.cpp file mentions, and those of the shared helpers it
    calls, count for each architecture whose loader that file defines: a superset of what
    llama.cpp creates for any one file, so a name outside it is one llama.cpp refuses.
    """
    inventory: dict[str, set[str]] = {}
    for code, archs in source.model_files():
        used = code + source.helped(code)
        names = {source.name(tensor, suffix) for tensor, suffix in TN_CALL.findall(used) if tensor in source.tensor_templates}
        for arch in archs:
            inventory.setdefault(arch, set()).update(names)
    return {arch: sorted(names) for arch, names in sorted(inventory.items())}


def tensor_shapes(source: LlamaSource) -> dict[str, dict[str, dict[str, object]]]:
    """Architecture -> {"tensors": name template -> {"dims": expressions, "elements_only": bool}, "fields": name -> key}.

    A dimension is kept when it is arithmetic over hyperparameters the header states
    (ACCESSORS, and hparams fields the architecture reads from a key) and numbers, after
    the file's constants and the shared helpers' parameters are substituted. Only names
    created with one shape throughout the file and files that never redefine
    n_embd, n_vocab, n_expert or n_ff are kept: what is left is a shape llama.cpp checks
    (check_tensor_dims; by element count where the loader allows a reshape).
    """
    macro_locals = source.load_locals
    shapes: dict[str, dict[str, dict[str, object]]] = {}
    for code, archs in source.model_files():
        tensor_code = code
        for body in _bodies(code, HPARAMS).values():  # locals of the hyperparameter loader do not reach the tensors
            tensor_code = tensor_code.replace(body, "")
        if SHADOWED.search(tensor_code):
            continue
        tensor_code += source.called_helpers(tensor_code)
        fields = arch_fields(source, code)
        loader_locals = _unique_locals("".join(_bodies(code, LOADER).values()))  # over the graph's locals of the same name
        local_definitions = {**macro_locals, **_unique_locals(tensor_code), **loader_locals}
        tensors = _shapes(
            tensor_code, source, Dimensions(local_definitions, set(fields)), Dimensions(local_definitions, set(fields), per_block=True)
        )
        hparams_code = "".join(_bodies(code, HPARAMS).values())
        overridden = {name for name, behind in BEHIND.items() if any(f"hparams.{field}" in hparams_code for field in behind)}
        tensors = {name: shape for name, shape in tensors.items() if not overridden & _terms(shape)}
        used = set().union(*map(_terms, tensors.values()))
        for arch in archs:
            keys = {field: fields[field].replace("%s", arch) for field in sorted(used & set(fields))}
            shapes[arch] = {"tensors": tensors, "fields": keys}
    return dict(sorted(shapes.items()))


def _terms(shape: dict[str, object]) -> set[str]:
    return {term for dim in shape["dims"] for term in REFERENCE.findall(dim)}  # type: ignore[attr-defined]


def _unique_locals(code: str) -> dict[str, str | None]:
    """Constants a loader defines; a name defined twice with different values has none (None)."""
    found: dict[str, set[str]] = {}
    for name, value in LOCAL.findall(code):
        found.setdefault(name, set()).add(" ".join(value.split()))
    return {name: next(iter(values)) if len(values) == 1 else None for name, values in found.items()}


def _shapes(code: str, source: LlamaSource, dimensions: Dimensions, per_block: Dimensions) -> dict[str, dict[str, object]]:
    """Name template -> its one shape; a dimension that needs the block's own values (`ratio` of layer `bid`) by `per_block`."""
    found: dict[str, set[tuple[tuple[str | None, ...], bool]]] = {}
    for tensor, suffix, dims, flags in CREATE.findall(code):
        if tensor in source.tensor_templates:
            resolved = tuple(dimensions.resolve(d.strip()) or per_block.resolve(d.strip()) for d in dims.split(","))
            found.setdefault(source.name(tensor, suffix), set()).add((resolved, "TENSOR_ALLOW_RESHAPE" in flags))
    for tensor, suffix in TN_CALL.findall(code):
        if tensor in source.tensor_templates and source.name(tensor, suffix) not in found:
            found[source.name(tensor, suffix)] = {((None,), False)}  # created some other way: its shape is not stated here
    kept = {}
    for name, variants in found.items():
        dims = {resolved for resolved, _ in variants}
        if len(dims) == 1 and None not in (only := next(iter(dims))):
            kept[name] = {"dims": list(only), "elements_only": any(reshape for _, reshape in variants)}
    return dict(sorted(kept.items()))


@dataclass(frozen=True)
class Dimensions:
    """A loader's dimension expressions, rewritten over the header's hyperparameters (or None where that cannot be done)."""

    local_definitions: dict[str, str | None]
    fields: set[str]
    per_block: bool = False  # the layer loop's `i` is `bid`, and a per-layer field may be indexed by it: `ratios[bid]`

    def resolve(self, expression: str, depth: int = 0) -> str | None:
        if depth > 8:  # constants defined in terms of each other, but not this deep
            return None
        if self.per_block:
            expression = re.sub(r"\[\s*i\s*\]", "[bid]", CAST.sub("", expression))
        choice = TERNARY.fullmatch(expression.strip())
        if choice is not None:  # C's `a ? b : c`, over values: `(b if a else c)`
            parts = [self._test(choice["test"], depth), *(self.resolve(choice[name], depth + 1) for name in ("yes", "no"))]
            return None if None in parts else "({1} if {0} else {2})".format(*parts)
        parts, position = [], 0
        for match in REFERENCE.finditer(expression):
            term = self._term(match[0], depth)
            if term is None:
                return None
            parts += [expression[position : match.start()], term]
            position = match.end()
        resolved = "".join([*parts, expression[position:]]).strip()
        return resolved if (INDEXED if self.per_block else ARITHMETIC).fullmatch(resolved) else None

    def _test(self, test: str, depth: int) -> str | None:
        """A ternary's test: a value, or (per block) one comparison of two."""
        comparison = COMPARISON.fullmatch(test.strip())
        if comparison is None or not self.per_block:
            return self.resolve(test, depth + 1)
        left, right = self.resolve(comparison["left"], depth + 1), self.resolve(comparison["right"], depth + 1)
        return f"{left} {comparison['op']} {right}" if left and right else None

    def _term(self, name: str, depth: int) -> str | None:
        if self.per_block and name in ("i", "bid"):
            return "bid"
        if name in ACCESSORS:
            return ACCESSORS[name]
        if name.startswith("hparams."):
            field = name.removeprefix("hparams.")
            return field if field in self.fields else None
        definition = self.local_definitions.get(name)
        if definition is None:
            return None
        inner = self.resolve(definition, depth + 1)
        return None if inner is None else inner if REFERENCE.fullmatch(inner) or inner.isdigit() else f"({inner})"


def arch_fields(source: LlamaSource, code: str) -> dict[str, str]:
    """hparams field -> the metadata key (with "%s" for the architecture) the file's hyperparameter loader reads it from
    (a per-layer array among them: `compress_ratios`)."""
    kv_names, hparams_code = source.kv_names, "".join(_bodies(code, HPARAMS).values())
    reads = FIELD_READ.findall(hparams_code) + ARRAY_READ.findall(hparams_code)
    return {field: kv_names[kv] for kv, field in reads if kv in kv_names}


def tokenizers_needing_merges(source: LlamaSource) -> dict[str, list[str]]:
    """Tokenizer model -> the tokenizer.ggml.pre values exempt: the BPE tokenizers llama.cpp refuses without merges."""
    vocab = source.files["llama-vocab.cpp"]
    needs: dict[str, list[str]] = {}
    for branch in TOKENIZER_BRANCH.finditer(vocab):
        body = _block(vocab, branch.end())
        if 'throw std::runtime_error("cannot find tokenizer merges' in body:
            for model in re.findall(r'"(\w+)"', branch[1]):
                needs[model] = sorted(set(MERGES_EXEMPT.findall(body)))
    return dict(sorted(needs.items()))


def _block(text: str, start: int) -> str:
    """The text of the brace block whose '{' ends just before `start`."""
    depth = 1
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start:index]
    return text[start:]


def pre_tokenizers(source: LlamaSource) -> dict[str, list[str]]:
    """Tokenizer model -> the tokenizer.ggml.pre values llama.cpp knows for it; any other it refuses ("unknown pre-tokenizer type").

    llama-vocab.cpp gives a BPE vocabulary its pre-tokenizer by name, in one if/else chain
    ending in that throw; the tokenizer models it reads as BPE are those whose branch sets
    LLAMA_VOCAB_TYPE_BPE. An empty name is accepted (with a warning).
    """
    vocab = _without_comments(source.files["llama-vocab.cpp"])
    chain = re.search(r"if \(type == LLAMA_VOCAB_TYPE_BPE\)\s*\{", vocab)
    assert chain is not None, "llama-vocab.cpp no longer names BPE pre-tokenizers as this script expects"
    body = _block(vocab, chain.end())
    names = sorted(set(re.findall(r'tokenizer_pre == "([^"]+)"', body[: body.index("unknown pre-tokenizer type")])))
    models = [
        model
        for branch in TOKENIZER_BRANCH.finditer(vocab)
        if "type = LLAMA_VOCAB_TYPE_BPE;" in _block(vocab, branch.end())[:200]
        for model in re.findall(r'"(\w+)"', branch[1])
    ]
    return {model: ["", *names] for model in sorted(models)}


def required_gating(source: LlamaSource) -> dict[str, int]:
    """Architecture -> the only expert_gating_func value its loader accepts (it throws on any other)."""
    values = dict(
        (name, int(value))
        for name, value in re.findall(r"(LLAMA_EXPERT_GATING_FUNC_TYPE_\w+)\s*=\s*(\d+)", source.files["llama-hparams.h"])
    )
    return {arch: values[found[1]] for code, archs in source.model_files() if (found := GATING_CHECK.search(code)) for arch in archs}


def rope_checked_architectures(source: LlamaSource) -> list[str]:
    """The architectures whose rope.dimension_count llama.cpp requires to equal the key length ("invalid n_rot")."""
    found = ROPE_CHECK.search(source.files["llama-model.cpp"])
    assert found is not None, "llama-model.cpp no longer checks n_rot as this script expects"
    return sorted(source.arch_names[arch] for arch in re.findall(r"LLM_ARCH_\w+", found[1]))


def required_keys(body: str) -> list[str]:
    """LLM_KV ids the function reads unconditionally with `required` left at true.

    Only statements at the function's own level count, up to its first `return`
    (a return inside `if (... vocab_only ...)` aside: the full load never takes it);
    a key read inside a branch or a loop, or after a possible early return, is not
    required of every file.
    """
    required, depth, position = [], 0, 0
    while position < len(body):
        char = body[position]
        if char in "{}":
            depth += 1 if char == "{" else -1
        elif body.startswith("return", position) and re.match(r"return\b", body[position:]):
            if "vocab_only" not in body[body.rfind("if", 0, position) : position]:
                break
        elif depth == 0 and (call := KEY_CALL.match(body, position)):
            arguments, end = _arguments(body, call.end())
            if len(arguments) == REQUIRED_ARGUMENTS[call[1]] or arguments[-1] == "true":
                required.append(arguments[0])
            position = end
            continue
        position += 1
    return required


def _arguments(text: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of a call whose '(' ends just before `start`, and where the call ends."""
    arguments, depth, current = [], 0, start
    for index in range(start, len(text)):
        char = text[index]
        if char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        elif char == ")" or (char == "," and depth == 0):
            arguments.append(text[current:index].strip())
            current = index + 1
            if char == ")":
                return arguments, index + 1
    return arguments, len(text)


def hyperparameter_keys(source: LlamaSource) -> dict[str, list[str]]:
    """Architecture name -> the metadata keys llama.cpp's full load refuses to do without."""
    kv_names = source.kv_names
    generic = required_keys(next(iter(_bodies(source.files["llama-model.cpp"], GENERIC_HPARAMS).values())))
    keys: dict[str, list[str]] = {}
    for path, code in sorted(source.files.items()):
        for cls, body in _bodies(code, HPARAMS).items() if path.startswith("models/") else ():
            if cls in source.classes and source.classes[cls] != "LLM_ARCH_CLIP":
                arch = source.arch_names[source.classes[cls]]
                ids = dict.fromkeys(generic + required_keys(body))
                keys[arch] = [kv_names[kv].replace("%s", arch) for kv in ids if kv in kv_names]
    return dict(sorted(keys.items()))


LAYER_LOOP = re.compile(r"for \(int i = 0; i < n_layer(?:_all)?; (?:\+\+i|i\+\+)\)")
ASSIGNED = re.compile(r"(?P<target>[\w.]+)\s*=\s*$")
NAMED = re.compile(r'tn\(\s*(?P<tensor>LLM_TENSOR_\w+)\s*(?:,\s*"(?P<suffix>\w+)")?')
COMPARISON = re.compile(r"(?P<left>[\w.()\[\] ]+?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<right>[\w.()\[\] ]+)")
PRESENCE = re.compile(r"(?P<not>!)?\s*(?P<var>[\w.]+)(?:\s*(?P<op>==|!=)\s*(?:nullptr|NULL))?")
TOKEN = re.compile(r"\bcreate_tensor_\w+\(|\bcreate_tensor\(|[{}();]|\bfor\b|\bif\b|\belse\b")


@dataclass
class Requirement:
    """A tensor llama.cpp's loader creates without TENSOR_NOT_REQUIRED, under conditions that are tensors present or absent."""

    name: str  # template, "{bid}" for the block
    conditions: tuple[tuple[str, str, bool], ...]  # ("tensor", template, present) or ("value", "n_expert == 0", holds)
    always: bool  # created with flags 0: required wherever its conditions hold; else only in blocks holding another tensor so created


def tensor_requirements(source: LlamaSource) -> dict[str, dict[str, object]]:
    """Architecture -> {"tensors": the tensors its loader requires, where the source says so plainly, "fields": the
    hparams fields their conditions compare -> their metadata keys}.

    The loader's body is walked with the shared helpers it calls put in place. A create_tensor
    counts when every block around it, inside the layer loop or outside it, is an `if` on whether
    a tensor was created (`if (layer.wqkv)`, `if (output == NULL)`) or its `else`; any other
    condition is kept where it compares hyperparameters the header states (the block index and
    per-layer values among them: `ratios[bid] != 0`); any other makes it no requirement: the
    runtime tier's load decides those. A tensor created with flags other than 0 (but without
    TENSOR_NOT_REQUIRED) may be optional in a way the source computes (deepseek4's MTP-only
    files leave whole blocks out): it is required only of a block that holds another tensor so created.
    """
    macro_locals = source.load_locals
    requirements: dict[str, dict[str, object]] = {}
    for code, archs in source.model_files():
        fields = arch_fields(source, code)
        for body in _bodies(code, LOADER).values():
            code_only = _without_comments(source.inlined(body))
            dimensions = Dimensions({**macro_locals, **_unique_locals(code_only)}, set(fields), per_block=True)
            found = _requirements(source, code_only, None if SHADOWED.search(code_only) else dimensions)
            compared = [subject for r in found for kind, subject, _ in r.conditions if kind == "value"]
            used = {term for subject in compared for term in re.findall(r"[A-Za-z_]\w*", subject)}
            for arch in archs:
                requirements[arch] = {
                    "tensors": [vars(r) | {"conditions": [list(c) for c in r.conditions]} for r in found],
                    "fields": {field: key.replace("%s", arch) for field, key in sorted(fields.items()) if field in used},
                }
    return dict(sorted(requirements.items()))


Condition = tuple[str, str, bool]


def _requirements(source: LlamaSource, code: str, dimensions: Dimensions | None) -> list[Requirement]:
    found: dict[tuple[str, tuple[Condition, ...]], Requirement] = {}
    created: dict[str, str] = {}  # variable -> the template it holds
    stack: list[tuple[str, Condition | None]] = []  # ("loop" | "if" | "else" | "scope" | "other", its condition)
    last_if: Condition | None = None
    position = 0
    while (token := TOKEN.search(code, position)) is not None:
        text, position = token[0], token.end()
        if text.startswith("create_tensor("):
            target = ASSIGNED.search(code[_statement_start(code, token.start()) : token.start()])
            arguments, position = _arguments(code, position)
            call = NAMED.match(arguments[0]) if arguments else None
            if call is None or call["tensor"] not in source.tensor_templates or len(arguments) < 3:
                continue
            name = source.name(call["tensor"], call["suffix"] or "")
            if target:
                created[target["target"]] = name
            requirement = _requirement(name, arguments[2], stack)
            if requirement is not None:
                found.setdefault((requirement.name, requirement.conditions), requirement)
        elif text in ("if", "for"):
            header, position = _arguments(code, code.index("(", position) + 1)
            brace = code[position:].lstrip()
            if not brace.startswith("{"):
                continue  # a one-statement branch: nothing in it counts
            position = code.index("{", position) + 1
            if text == "for":
                stack.append(("loop" if LAYER_LOOP.fullmatch(f"for ({'; '.join(header)})") else "other", None))
            else:
                stack.append(("if", _condition(", ".join(header), created, dimensions)))
        elif text == "else":
            after = code[position:].lstrip()
            if after.startswith("{"):
                position = code.index("{", position) + 1
                stack.append(("else", (last_if[0], last_if[1], not last_if[2]) if last_if else None))
            else:
                last_if = None  # an `else if`: its condition is not a plain presence test of one tensor
        elif text == "{":  # a plain scope (after a statement) changes nothing; after `switch (...)`, `do` or `=` it does
            before = code[: token.start()].rstrip()
            stack.append(("scope" if not before or before[-1] in ";{}" else "other", None))
        elif text == "}" and stack:
            kind, condition = stack.pop()
            last_if = condition if kind == "if" else None
    return list(found.values())


def _without_comments(code: str) -> str:
    """The code with its comments and the text of its error messages blanked: words there are not statements."""
    code = re.sub(r"//[^\n]*|/\*.*?\*/", " ", code, flags=re.S)
    return re.sub(r'std::runtime_error\("(?:[^"\\]|\\.)*"', 'std::runtime_error(""', code)


def _statement_start(code: str, at: int) -> int:
    return max(code.rfind(";", 0, at), code.rfind("{", 0, at), code.rfind("}", 0, at)) + 1


def _condition(condition: str, created: dict[str, str], dimensions: Dimensions | None) -> Condition | None:
    """("tensor", template, present) for a condition that only asks whether a tensor was created; ("value", comparison,
    True) for one comparison of hyperparameters the header states; None for any other."""
    match = PRESENCE.fullmatch(condition.strip())
    if match is not None and match["var"] in created:
        present = (match["op"] == "!=") if match["op"] else not match["not"]
        return "tensor", created[match["var"]], present
    compared = _comparison(condition, dimensions) if dimensions is not None else None
    return ("value", compared, True) if compared else None


def _requirement(name: str, flags: str, stack: list[tuple[str, Condition | None]]) -> Requirement | None:
    if "TENSOR_NOT_REQUIRED" in flags or "TENSOR_SKIP" in flags:
        return None
    loops = [kind for kind, _ in stack if kind == "loop"]
    if any(kind == "other" for kind, _ in stack) or len(loops) > 1 or bool(loops) != ("{bid}" in name):
        return None
    conditions = [condition for kind, condition in stack if kind in ("if", "else")]  # scopes and the loop add none
    if None in conditions:
        return None
    return Requirement(name, tuple(c for c in conditions if c is not None), flags.strip() == "0")


GRAPH = re.compile(r"(llama_model_\w+::graph::\w+)\(")  # the graph's constructor and its methods (a layer's attention)
ASSERTION = re.compile(r"GGML_ASSERT\((?P<condition>[^;]*)\);")


def graph_assertions(source: LlamaSource) -> dict[str, list[str]]:
    """Architecture -> the comparisons of hyperparameters its graph asserts ("n_embd_head == n_rot").

    Only GGML_ASSERTs at the own level of the graph's constructor or of one of its methods
    (not in a branch or a loop) whose two sides are arithmetic over hyperparameters the header
    states are kept: llama.cpp aborts building the graph, and so creating a context, when one fails.
    """
    macro_locals = source.load_locals
    found: dict[str, list[str]] = {}
    for path, code in sorted(source.files.items()):
        for method, body in _bodies(code, GRAPH).items() if path.startswith("models/") else ():
            cls = method.split("::")[0]
            if cls not in source.classes:
                continue
            dimensions = Dimensions({**macro_locals, **_unique_locals(body)}, set())
            kept = [kept for assertion in _top_level_assertions(_without_comments(body)) if (kept := _comparison(assertion, dimensions))]
            arch = source.arch_names[source.classes[cls]]
            found[arch] = list(dict.fromkeys(found.get(arch, []) + kept))
    return {arch: kept for arch, kept in sorted(found.items()) if kept}


def _top_level_assertions(body: str) -> list[str]:
    depth, kept = 0, []
    for match in re.finditer(r"[{}]|GGML_ASSERT\(", body):
        if match[0] in "{}":
            depth += 1 if match[0] == "{" else -1
        elif depth == 0 and (assertion := ASSERTION.match(body, match.start())):
            kept.append(assertion["condition"])
    return kept


def _comparison(condition: str, dimensions: Dimensions) -> str | None:
    """ "left OP right" over the header's hyperparameters, or None where a side cannot be stated."""
    comparison = COMPARISON.fullmatch(condition.strip())
    if comparison is None:
        return None
    left, right = dimensions.resolve(comparison["left"]), dimensions.resolve(comparison["right"])
    return f"{left} {comparison['op']} {right}" if left and right and " " not in left + right else None


def key_types(source: LlamaSource) -> dict[str, dict[str, dict[str, object]]]:
    """ "*" (every architecture) and each architecture -> key -> how llama.cpp reads it: {"how", "type", "per_layer"}.

    `how` is "scalar" (get_key: the stored type must be `type`), "scalar_or_array" (get_key_or_arr: that type, or an
    array of it, of block_count elements when `per_layer`) or "array" (get_arr: an array of that element type; a
    scalar there is not read). The type is the C++ type of what the value is read into (an hparams field, a local),
    as GGUF names it. A key read into two different types somewhere is left out.
    """
    hparams = source.files["llama-hparams.h"]
    generic: dict[str, list[dict[str, object]]] = {}
    for name in GENERIC_SOURCES:
        _typed_reads(source, source.files[name], hparams, generic)
    tables = {"*": _agreed(generic)}
    for path, code in sorted(source.files.items()):
        for cls, body in _bodies(code, HPARAMS).items() if path.startswith("models/") else ():
            if cls in source.classes and source.classes[cls] != "LLM_ARCH_CLIP":
                reads: dict[str, list[dict[str, object]]] = {}
                _typed_reads(source, body, hparams, reads)
                arch = source.arch_names[source.classes[cls]]
                own = {key.replace("%s", arch): read for key, read in _agreed(reads).items()}
                tables[arch] = {key: read for key, read in own.items() if tables["*"].get(key.replace(arch, "%s", 1), read) == read}
    return tables


def _typed_reads(source: LlamaSource, code: str, hparams: str, reads: dict[str, list[dict[str, object]]]) -> None:
    """Every get_key, get_key_or_arr and get_arr call of `code`, with the type of what it reads into."""
    for call in TYPED_READ.finditer(code):
        arguments, _ = _arguments(code, call.end() - 1)
        if len(arguments) < 2:
            continue
        declared = _declared_type(arguments[1], code[: call.start()], hparams)
        if declared is None or declared[1] not in GGUF_TYPES:
            continue
        container, cpp_type = declared
        how = {"get_key": "scalar", "get_key_or_arr": "scalar_or_array", "get_arr": "array"}[call[1]]
        if (how == "scalar") != (container == "scalar"):
            continue  # read some other way (get_key_or_arr into one value ignores an array unless it is required)
        per_layer = how == "scalar_or_array" and len(arguments) > 2 and arguments[2] in ("hparams.n_layer_all", "hparams.n_layer()")
        ids = SPECIAL_TOKEN_KEYS.findall(code) if call[2].startswith("std::get") else [call[2]]
        for kv in ids:
            if kv in source.kv_names:
                reads.setdefault(source.kv_names[kv], []).append({"how": how, "type": GGUF_TYPES[cpp_type], "per_layer": per_layer})


def _declared_type(target: str, before: str, hparams: str) -> tuple[str, str] | None:
    """("scalar" | "array" | "vector", C++ type) of a get_key target: an hparams field, or the last local declared before the call."""
    field = re.fullmatch(r"hparams\.(\w+)", target)
    name, where = (field[1], hparams) if field else (target, before)
    if not re.fullmatch(r"\w+", name):
        return None
    found = list(re.finditer(DECLARATION.format(name=re.escape(name)), where))
    if not found:
        return None
    last = found[-1]
    container = next(kind for kind in ("array", "vector", "scalar") if last[kind])
    return container, " ".join(last[container].split())


def _agreed(reads: dict[str, list[dict[str, object]]]) -> dict[str, dict[str, object]]:
    """The keys every read of which asks for the same type the same way."""
    return {key: found[0] for key, found in sorted(reads.items()) if all(read == found[0] for read in found)}


def _bodies(source: str, header: re.Pattern[str]) -> dict[str, str]:
    """Name -> body (after the opening brace, up to the closing brace in column 0) of each matching function."""
    bodies = {}
    for match in header.finditer(source):
        opening = source.index("{", match.end())
        bodies[match[1]] = source[opening + 1 : source.find("\n}", opening)]
    return bodies


def table(sdist: Path) -> dict[str, object]:
    return {
        "llama_cpp_python": LLAMA_CPP_PYTHON,
        "derived_from": f"llama.cpp as vendored in {SDIST}",
        "sdist_sha256": hashlib.sha256(sdist.read_bytes()).hexdigest(),
        "how": "python -m tests.llama_cpp_source conformance/llama-cpp-loader.json",
        **rules(LlamaSource(read_sources(sdist))),
    }


def rules(source: LlamaSource) -> dict[str, object]:
    """Everything the loader-rules check needs: names llama.cpp knows, limits, tensors, shapes, keys."""
    limits = dict(re.findall(r"#define (LLAMA_MAX_EXPERTS|LLAMA_MAX_LAYERS)\s+(\d+)", source.files["llama-hparams.h"]))
    assert len(limits) == 2, "LLAMA_MAX_EXPERTS or LLAMA_MAX_LAYERS is no longer defined in llama-hparams.h"
    return {
        "known_architectures": sorted(set(source.arch_names.values())),
        "known_tokenizers": sorted(set(TOKENIZER.findall(source.files["llama-vocab.cpp"]))),
        "max_experts": int(limits["LLAMA_MAX_EXPERTS"]),
        "max_layers": int(limits["LLAMA_MAX_LAYERS"]),
        "architectures": tensor_inventory(source),
        "shapes": tensor_shapes(source),
        "rope_dimension_is_head_size": rope_checked_architectures(source),
        "expert_gating_func": required_gating(source),
        "tokenizers_needing_merges": tokenizers_needing_merges(source),
        "required_keys": hyperparameter_keys(source),
        "key_types": key_types(source),
        "required_tensors": tensor_requirements(source),
        "graph_assertions": graph_assertions(source),
        "pre_tokenizers": pre_tokenizers(source),
    }


def render(document: dict[str, object]) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        target.write_text(render(table(fetch_sdist(Path(folder)))), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
