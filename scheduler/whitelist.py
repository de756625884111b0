"""Whitelists (label `com.docker.swarm.whitelists`): the nodes a cluster-wide object is made on.

A whitelist is a JSON array of expressions, all of which a node must satisfy. In each, `|`
separates alternative values (`node==node1|node2`: node1 or node2, exactly, as in classic
Swarm); each alternative is a constraint value (glob or `/regex/`): `node` matches the node
name or ID, any other key the node label.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from scheduler.expr import Expr, OPERATORS, parse_expr
from scheduler.node import Node
from scheduler.spec import label_rules

WHITELIST_LABEL = "com.docker.swarm.whitelists"


def whitelist_rules(labels: Mapping[str, str]) -> list[list[Expr]]:
    """The label's expressions, each as its alternatives; [] when there is no whitelist.

    Raises SpecError / ExprError naming what cannot be read."""
    rules = []
    for entry in label_rules(labels, WHITELIST_LABEL):
        whole = parse_expr(entry, "whitelist")  # the key and operator, checked once
        operator = next(op for op in OPERATORS if op in entry)
        rules.append([parse_expr(f"{whole.key}{operator}{alt}", "whitelist")
                      for alt in entry.split(operator, 1)[1].split("|")])
    return rules


def _candidates(node: Node, key: str) -> tuple[str, ...]:
    return (node.name, node.id) if key == "node" else (node.labels.get(key, ""),)


def whitelisted(rules: Sequence[Sequence[Expr]], nodes: Sequence[Node]) -> list[Node]:
    """The nodes that satisfy every rule (any alternative of `==`, none of `!=`)."""
    def satisfies(node: Node, alternatives: Sequence[Expr]) -> bool:
        hits = [e.first_match(_candidates(node, e.key)) is not None for e in alternatives]
        return not any(hits) if alternatives[0].negated else any(hits)

    return [n for n in nodes if all(satisfies(n, alts) for alts in rules)]
