"""Where the layers go and what each machine must hold: the split, llama.cpp's layer log read back, and the preflight's
verdict per host (servers on one host share its memory; loopback servers share this machine's)."""

from __future__ import annotations

import pytest

from pytest_dfqs.certification import _placement_note
from pytest_dfqs.runtime.preflight import MemoryPlan, NodePlan
from pytest_dfqs.runtime.rpc import ALL_LAYERS, HERE, Placement, RpcEndpointError, is_loopback, layers_per_device, parse_split

GIB = 1 << 30


@pytest.mark.parametrize(
    ("split", "offloaded"),
    [((), ALL_LAYERS), ((1.0, 1.0), ALL_LAYERS), ((1.0, 1.0, 1.0), 21), ((3.0, 1.0, 4.0), 16), ((1.0, 0.0, 100.0), 1)],
)
def test_this_machines_share_keeps_the_first_layers_here(split: tuple[float, ...], offloaded: int) -> None:
    """30 repeating layers and the output layer: a third kept here leaves 21 on the servers; at least one each side."""
    assert Placement(("a:1", "b:2"), split, n_layer=30).offloaded_layers() == offloaded


def test_a_placement_tells_the_worker_the_servers_shares_only() -> None:
    placement = Placement(("a:1", "b:2"), (3.0, 1.0, 4.0), n_layer=30)
    assert placement.worker_args() == {"rpc": ["a:1", "b:2"], "split": [3.0, 1.0], "offloaded": 16}
    assert placement.local_share == 0.5 and Placement().worker_args() is None
    assert placement.describe() == "the layers on the rpc-servers a:1, b:2, shared 3:1, this machine's CPU keeping 50% of them"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("1,2,3,4", "gives 4 shares for 2 rpc-server(s)"),
        ("1", "gives 1 shares for 2 rpc-server(s)"),
        ("0,0,5", "the rpc-servers' are not all 0"),
        ("1,-1", "shares are numbers >= 0"),
        ("1,nan", "shares are numbers >= 0"),
        ("1;2", "is not a list of numbers"),
    ],
)
def test_a_split_that_does_not_fit_the_endpoints_is_refused(text: str, complaint: str) -> None:
    with pytest.raises(RpcEndpointError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        parse_split(text, 2)


def test_the_layers_are_counted_from_llama_cpps_own_assignment_lines() -> None:
    lines = [
        "load_tensors: layer   0 assigned to device CPU, is_swa = 0",
        "load_tensors: layer   1 assigned to device RPC0, is_swa = 0",
        "load_tensors: layer   2 assigned to device RPC1, is_swa = 0",
        "load_tensors: layer   3 assigned to device RPC1, is_swa = 0",
        "load_tensors: RPC0[127.0.0.1:1] model buffer size =     0.42 MiB",
    ]
    devices = [{"name": "RPC0", "endpoint": "127.0.0.1:1"}, {"name": "RPC1", "endpoint": "127.0.0.1:2"}]
    assert layers_per_device(lines, devices) == {HERE: 1, "127.0.0.1:1": 1, "127.0.0.1:2": 2}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("10.0.0.5", False),
        ("gpu-box", False),
    ],
)
def test_loopback_hosts_are_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def plan(*nodes: NodePlan, here: int = 1 * GIB) -> MemoryPlan:
    return MemoryPlan(ctx=4096, weights=here, cache=0, compute=0, logits=0, overhead=0, nodes=nodes)


def test_a_remote_node_short_of_memory_is_named_with_its_figures() -> None:
    short = plan(NodePlan("10.0.0.5:50052", 8 * GIB, 9 * GIB, GIB // 2, 0), NodePlan("10.0.0.6:50052", 64 * GIB, 9 * GIB, 0, 0))
    (only,) = short.shortfalls(available=16 * GIB)
    assert only.startswith("node 10.0.0.5:50052 needs 10.0 GiB of its 8.0 GiB free (weights 9.0 GiB + caches 0.5 GiB")


def test_servers_on_one_host_share_its_memory() -> None:
    two = plan(NodePlan("10.0.0.5:50052", 12 * GIB, 7 * GIB, 0, 0), NodePlan("10.0.0.5:50053", 12 * GIB, 7 * GIB, 0, 0))
    (only,) = two.shortfalls(available=16 * GIB)
    assert only == "host 10.0.0.5's rpc-servers 10.0.0.5:50052, 10.0.0.5:50053 need about 14.7 GiB together, 12.0 GiB free there"


def test_loopback_servers_share_this_machines_memory() -> None:
    local = plan(NodePlan("127.0.0.1:50052", 20 * GIB, 9 * GIB, 0, 0), NodePlan("127.0.0.1:50053", 20 * GIB, 9 * GIB, 0, 0))
    assert local.shortfalls(available=24 * GIB) == []
    (only,) = local.shortfalls(available=16 * GIB)
    assert only.startswith("this machine needs about 19.9 GiB (its own part 1.0 GiB, node 127.0.0.1:50052 9.4 GiB,")
    assert only.endswith("on the loopback), 16.0 GiB available")


def test_an_rpc_server_off_this_machine_gets_a_warning_in_the_header() -> None:
    lines = _placement_note(Placement(("127.0.0.1:50052", "10.0.0.5:50052")))
    servers = "127.0.0.1:50052, 10.0.0.5:50052"
    assert lines[0] == f"dfqs: rpc: the layers on the rpc-servers {servers}, shared by their free memory (the input layer stays here)"
    assert lines[1].startswith("dfqs: WARNING: rpc-server 10.0.0.5:50052 is not on this machine: llama.cpp's RPC has no authentication")
    assert len(_placement_note(Placement(("127.0.0.1:50052",)))) == 1 and _placement_note(None) == []
