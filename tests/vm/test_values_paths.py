"""How handles, tensors and host-only objects print, test truth and count towards memory."""

import sys

import numpy as np
import pytest

from helpers import body, run_src
from nbcvm.vm.values import held_bytes, to_str, truthy, type_name


def run_body(code: str):
    outcome, out, _ = run_src(body(code + "\n    push 0\n    ret"))
    return outcome, out


def test_handles_have_a_type_name_and_print_their_kind_id_and_state():
    outcome, out = run_body("push 3\nalloc\ndup\ntypeof\nprint\ndup\nprint\ndup\nlen\nprint\ndup\nfree\nprint")
    assert outcome.error is None
    assert out == "handle\n<tensor handle #1>\n3\n<tensor handle #1 freed>\n"


def test_data_ops_see_through_a_tensor_handle():
    outcome, out = run_body("push 2\nalloc\ndup\npush 1\npush 5\nsetitem\npush 1\ngetitem\nprint")
    assert outcome.error is None and out == "5.0\n"


@pytest.mark.parametrize("op", ["jf end", "jt end", "not\npop"])
def test_a_tensor_has_no_truth_value(op):
    outcome, out = run_body(f"push 1\nnewlist 1\ntensor\n{op}\nend:")
    assert outcome.error.type_name == "TypeError"
    assert outcome.error.message == "a tensor has no truth value; reduce it first (tsum, tmax ...)"


def test_truthy_and_printing_of_host_values():
    with pytest.raises(TypeError, match="no truth value"):
        truthy(np.zeros(1))
    assert truthy([0]) and not truthy("") and not truthy(None)
    assert type_name(object()) == "handle"
    assert to_str([object(), 1]) == "[<handle>, 1]"
    assert to_str(np.array(2.5)) == "tensor(2.5)"


def test_held_bytes_counts_maps_with_their_keys_and_values_once():
    inner = {"key": "value"}
    shared = [inner, inner]
    expected = (sys.getsizeof(shared) + sys.getsizeof(inner)
                + sys.getsizeof("key") + sys.getsizeof("value"))
    assert held_bytes([shared]) == expected
    cyclic: dict = {}
    cyclic["self"] = cyclic
    assert held_bytes([cyclic]) == sys.getsizeof(cyclic) + sys.getsizeof("self")
    # ints and floats inside a container count through the container's own size
    assert held_bytes([{1: 2.5}]) == sys.getsizeof({1: 2.5})
