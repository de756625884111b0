"""The expression parser and matcher (classic Swarm's expr.go, with errors that name the expression)."""
from __future__ import annotations

import pytest

from scheduler import ExprError, parse_expr


@pytest.mark.parametrize("text, key, operator, value, soft", [
    ("size==xxl", "size", "==", "xxl", False),
    ("image==~nginx", "image", "==", "nginx", True),
    ("image!=nginx", "image", "!=", "nginx", False),
    ("node!=~node1", "node", "!=", "node1", True),
    ("Storage==SSD", "storage", "==", "SSD", False),  # keys are case-insensitive, values are not
    ("com.example.role==front end", "com.example.role", "==", "front end", False),
    ("a_==x", "a_", "==", "x", False),
    ("ostype==/(linux)|(windows)/", "ostype", "==", "/(linux)|(windows)/", False),
])
def test_parse(text, key, operator, value, soft):
    e = parse_expr(text)
    assert (e.key, e.operator, e.value, e.soft) == (key, operator, value, soft)


def test_str_gives_back_the_rule():
    assert str(parse_expr("image==~nginx")) == "image==~nginx"
    assert str(parse_expr("NODE!=node1")) == "node!=node1"


def test_operator_split_is_at_the_first_double_equals():
    # classic: '==' is looked for first, even after a '!='
    with pytest.raises(ExprError, match=r"key 'ab!=c' is invalid"):
        parse_expr("ab!=c==d")
    assert parse_expr("ab!=cd").operator == "!="
    assert parse_expr("ab===x").value == "=x"


@pytest.mark.parametrize("text, problem", [
    ("size=xxl", "one of operator ==, != is expected"),
    ("sizexxl", "one of operator ==, != is expected"),
    ("1bad==x", "key '1bad' is invalid"),
    ("a==x", "key 'a' is invalid"),  # at least two characters
    ("==x", "key '' is invalid"),
    ("size==", "value '' is invalid"),
    ("size==a#b", "value 'a#b' is invalid"),
    ("size==~", "value '~' is invalid"),
    ("size==/[/", "bad regular expression"),
    ("size==a(b", "bad regular expression"),
])
def test_errors_name_the_expression(text, problem):
    with pytest.raises(ExprError) as caught:
        parse_expr(text, "constraint")
    assert caught.value.message.startswith(f"invalid constraint '{text}': {problem}")


@pytest.mark.parametrize("text, yes, no", [
    ("node==node1", ["node1"], ["node10", "xnode1", "Node1", ""]),
    ("node==node-*", ["node-1", "node-", "node-a-b"], ["node", "xnode-1"]),
    ("node==*-1", ["node-1", "-1"], ["node-10"]),
    ("node==*", ["", "anything"], []),
    ("node==/node-[12]/", ["node-1", "xnode-2x"], ["node-3"]),
    ("node==/^node-1$/", ["node-1"], ["node-10"]),
    ("node==/", ["/"], ["", "a"]),  # a lone slash is a plain value
    ("kernel==4.9.*", ["4.9.0", "4.9.123"], ["4.10.0"]),
    ("kernel==4.9", ["4.9", "4x9"], ["4.90"]),  # as in classic Swarm, '.' stays a regex wildcard
    ("os==a|b", ["a", "xb"], ["x"]),  # ... and so does '|' (^a|b$)
])
def test_matching(text, yes, no):
    e = parse_expr(text)
    for value in yes:
        assert e.matches([value]), value
        assert not parse_expr(text.replace("==", "!=", 1)).matches([value]), value
    for value in no:
        assert not e.matches([value]), value


def test_any_candidate_matching_is_enough_and_none_means_no():
    e = parse_expr("image==nginx*")
    assert e.matches(["redis", "nginx:1.25"])
    assert not e.matches([])
    assert parse_expr("image!=nginx*").matches([])
    assert not parse_expr("image!=nginx*").matches(["redis", "nginx:1.25"])
    assert e.first_match(["redis", "nginx:1.25", "nginx"]) == "nginx:1.25"
    assert parse_expr("image==nginx").first_match({"nginx", "redis"}) == "nginx"


def test_memoized_results_stay_correct():
    e = parse_expr("region==/eu-[a-z]+/")
    for _ in range(3):
        assert e.matches(("eu-west",)) and not e.matches(("us-east",))
    assert parse_expr("region==/eu-[a-z]+/") is e  # parsed once, memo shared by later placements
