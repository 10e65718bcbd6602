"""Data instructions on the wrong kinds of values: each refusal names the type and the problem."""

import pytest

from helpers import body, run_src

LIST3 = "    push 1\n    push 2\n    push 3\n    newlist 3\n"
TENSOR3 = LIST3 + "    tensor\n"


def run_body(code: str):
    outcome, out, _ = run_src(body(code + "\n    push 0\n    ret"))
    return outcome, out


@pytest.mark.parametrize("code,etype,message", [
    ("push 1\nlen", "TypeError", "len of int"),
    ("push nan\ntoint", "ValueError", "cannot convert nan to int"),
    ("push inf\ntoint", "ValueError", "cannot convert inf to int"),
    ("newlist 0\ntoint", "TypeError", "cannot convert list to int"),
    ("push 1e30\ntoint", "OverflowError", "1e+30 does not fit in 64 bits"),
    ('push "99999999999999999999"\ntoint', "OverflowError", "99999999999999999999 does not fit in 64 bits"),
    ('push "1_000"\ntoint', "ValueError", "not an int: '1_000'"),
    ('push "abc"\ntofloat', "ValueError", "not a float: 'abc'"),
    ('push "1_0.5"\ntofloat', "ValueError", "not a float: '1_0.5'"),
    ("push nil\ntofloat", "TypeError", "cannot convert nil to float"),
    (LIST3 + 'push "a"\ngetitem', "TypeError", "list index must be an int, got string"),
    (LIST3 + "push -4\ngetitem", "IndexError", "list index -4 out of range (length 3)"),
    ("newmap 0\nnewlist 0\ngetitem", "TypeError", "map key must be a scalar, got list"),
    ("newmap 0\npush 7\ngetitem", "KeyError", "key 7 not in map"),
    ("push 5\npush 0\ngetitem", "TypeError", "cannot index int"),
    (TENSOR3 + "push 3\ngetitem", "IndexError", "tensor index 3 out of range (length 3)"),
    (TENSOR3 + 'push 0\npush "x"\nsetitem', "TypeError", "tensor element must be a number, got string"),
    ('push "abc"\npush 0\npush "z"\nsetitem', "TypeError", "cannot assign into string"),
    ('push "abc"\npush 1\nhas', "TypeError", "string contains needs a string, got int"),
    ("push 1\npush 1\nhas", "TypeError", "has on int"),
    ('newmap 0\npush "k"\ndelitem', "KeyError", "key k not in map"),
    ("newmap 0\nnewlist 0\ndelitem", "KeyError", "key [] not in map"),
    ('push "abc"\npush 0\ndelitem', "TypeError", "cannot delete from string"),
    ("push 3\npush 0\npush 1\nslice", "TypeError", "slice of int"),
    (LIST3 + 'push 0\npush "2"\nslice', "TypeError", "slice bounds must be ints or nil, got string"),
    ("newlist 0\npush 1\nnewmap 1", "TypeError", "map key must be a scalar, got list"),
    ("push 1\npush 2\nappend", "TypeError", "append to int"),
    ("newlist 0\nkeys", "TypeError", "keys of list"),
])
def test_data_op_errors(code, etype, message):
    outcome, out = run_body(code)
    assert outcome.exit_code == 1 and out == ""
    assert (outcome.error.type_name, outcome.error.message) == (etype, message)


def test_tofloat_refuses_overlong_numeric_strings():
    outcome, _ = run_body(f'push "{"1" * 401}"\ntofloat')
    assert (outcome.error.type_name, outcome.error.message) == ("ValueError", "numeric string too long")
    ok, out = run_body(f'push "{"1" * 400}"\ntofloat\nprint')
    assert ok.error is None and out == f"{float('1' * 400)!r}\n"


@pytest.mark.parametrize("code,printed", [
    ("push 7\ntoint\nprint", "7"),
    ("push true\ntoint\nprint", "1"),
    ('push "  -12 "\ntoint\nprint', "-12"),
    ("push -2.9\ntoint\nprint", "-2"),
    ("push 2.5\ntofloat\nprint", "2.5"),
    ("push true\ntofloat\nprint", "1.0"),
    (TENSOR3 + "push 1\ngetitem\nprint", "2.0"),
    (TENSOR3 + "dup\npush -1\npush 9\nsetitem\nprint", "tensor([1.0, 2.0, 9.0])"),
    (LIST3 + "push 2\nhas\nprint", "true"),
    (LIST3 + "push 5\nhas\nprint", "false"),
    ('push "hello"\npush "ell"\nhas\nprint', "true"),
    ("newmap 0\nnewlist 0\nhas\nprint", "false"),
    (LIST3 + "dup\npush 0\ndelitem\nprint", "[2, 3]"),
    (LIST3 + "push nil\npush -1\nslice\nprint", "[1, 2]"),
    ('push "abcdef"\npush 2\npush nil\nslice\nprint', "cdef"),
    ('push "abc"\npush -1\ngetitem\nprint', "c"),
    (TENSOR3 + "len\nprint", "3"),
])
def test_data_op_results(code, printed):
    outcome, out = run_body(code)
    assert outcome.error is None, outcome.error
    assert out == printed + "\n"


def test_setitem_list_key_message_matches_getitem():
    # the memory charge for a new entry used to test `key in map` first: Python's own message
    outcome, _ = run_body("newmap 0\nnewlist 0\npush 1\nsetitem")
    assert (outcome.error.type_name, outcome.error.message) == ("TypeError", "map key must be a scalar, got list")


def test_setitem_error_value_as_map_key_is_refused():
    # an error value is hashable on the host, so it gets past the entry check to the key check
    code = """
    try caught *
    push "boom"
    throw UserError
    endtry
caught:
    store e
    newmap 0
    load e
    push 1
    setitem
    push 0
    ret
"""
    outcome, out, _ = run_src(body(code, "e"))
    assert (outcome.error.type_name, outcome.error.message) == ("TypeError", "map key must be a scalar, got error")
