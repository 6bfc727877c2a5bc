"""Exact path-dependent TreeSHAP for LightGBM models, compiled with numba, several times faster
than LightGBM's own `pred_contrib` and giving the same values (tests compare them to 1e-9).

For a leaf with value v reached by a path whose distinct split features are j = 1..k, let
z_j be the share of the training rows (LightGBM's counts) that follow the path at the splits
on j, and o_j be 1 when the row follows the path at all of them, else 0. TreeSHAP gives
feature i the share of that leaf

    v * (o_i - z_i) * sum over s of s! (k - 1 - s)! / k! * r_s,

where r_s are the coefficients of R_i(t) = prod over j != i of (z_j + o_j t). One product
Q(t) = prod over all j serves every feature: R_i is Q divided by (z_i + o_i t). Every feature
the row does not follow gets the same -v * sum w_s q_s, and each one it follows needs one
synthetic division. Per row, per tree: the decisions at the internal nodes once, then per leaf
O(k * followed) work with no recursion.

Models with categorical splits or linear trees are left to LightGBM (`supported` says).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

ZERO = 1e-35  # LightGBM's kZeroThreshold


@dataclass(frozen=True)
class Forest:
    """The trees as flat arrays (nodes and leaves of tree t at offsets node_start[t]...)."""

    node_start: np.ndarray  # (trees + 1,)
    feature: np.ndarray  # per internal node
    threshold: np.ndarray
    default_left: np.ndarray  # bool
    missing: np.ndarray  # 0 none, 1 zero, 2 nan
    leaf_start: np.ndarray  # (trees + 1,)
    leaf_value: np.ndarray
    path_start: np.ndarray  # (leaves + 1,): the leaf's path entries
    path_node: np.ndarray  # internal node (tree-local index) on the path
    path_left: np.ndarray  # 1 when the path goes left there
    path_slot: np.ndarray  # index of the node's feature among the leaf's distinct features
    slot_start: np.ndarray  # (leaves + 1,): the leaf's distinct features
    slot_feature: np.ndarray
    slot_zero: np.ndarray  # z_j
    expected: float  # the sum of the trees' expected values: the bias term
    n_features: int


_MISSING = {"None": 0, "Zero": 1, "NaN": 2}


def supported(booster: Any) -> bool:
    """Whether every split is numerical and no tree is linear."""
    dump = booster.dump_model()

    def numerical(node: dict) -> bool:
        if "split_index" not in node:
            return "leaf_coeff" not in node  # a linear tree's leaf
        return (
            node["decision_type"] == "<="
            and numerical(node["left_child"])
            and numerical(node["right_child"])
        )

    return all(numerical(t["tree_structure"]) for t in dump["tree_info"])


def _walk(node: dict, path: list, nodes: list, leaves: list) -> None:
    """Collect internal nodes (pre-order) and leaves with their paths (node, left, share)."""
    if "split_index" not in node:
        leaves.append((node["leaf_value"], node.get("leaf_count", 0), list(path)))
        return
    me = len(nodes)
    nodes.append(node)
    count = node["internal_count"] or 1
    for child, left in ((node["left_child"], 1), (node["right_child"], 0)):
        share = child.get("internal_count", child.get("leaf_count", 0)) / count
        _walk(child, [*path, (me, left, share)], nodes, leaves)


def forest(booster: Any, num_iteration: int | None = None) -> Forest:
    """Flatten a LightGBM booster's trees (the first `num_iteration`, default all)."""
    dump = booster.dump_model(num_iteration=num_iteration or -1)
    cols: dict[str, list] = {k: [] for k in Forest.__dataclass_fields__}
    node_start, leaf_start, path_start, slot_start = [0], [0], [0], [0]
    expected = 0.0
    for tree in dump["tree_info"]:
        nodes: list[dict] = []
        leaves: list[tuple[float, int, list[tuple[int, int]]]] = []
        root = tree["tree_structure"]
        total = root.get("internal_count", root.get("leaf_count", 1)) or 1

        _walk(root, [], nodes, leaves)
        for node in nodes:
            cols["feature"].append(node["split_feature"])
            cols["threshold"].append(node["threshold"])
            cols["default_left"].append(bool(node["default_left"]))
            cols["missing"].append(_MISSING[node["missing_type"]])
        for value, count, path in leaves:
            expected += value * (count / total if path else 1.0)
            cols["leaf_value"].append(value)
            slots: dict[int, int] = {}
            zeros: list[float] = []
            for node_index, left, share in path:
                feat = nodes[node_index]["split_feature"]
                if feat not in slots:
                    slots[feat] = len(slots)
                    zeros.append(1.0)
                zeros[slots[feat]] *= share
                cols["path_node"].append(node_index)
                cols["path_left"].append(left)
                cols["path_slot"].append(slots[feat])
            cols["slot_feature"].extend(slots)
            cols["slot_zero"].extend(zeros)
            path_start.append(len(cols["path_node"]))
            slot_start.append(len(cols["slot_feature"]))
        node_start.append(len(cols["feature"]))
        leaf_start.append(len(cols["leaf_value"]))
    as_array = {
        "feature": np.int64,
        "threshold": np.float64,
        "default_left": np.bool_,
        "missing": np.int8,
        "leaf_value": np.float64,
        "path_node": np.int64,
        "path_left": np.int8,
        "path_slot": np.int64,
        "slot_feature": np.int64,
        "slot_zero": np.float64,
    }
    return Forest(
        node_start=np.asarray(node_start, np.int64),
        leaf_start=np.asarray(leaf_start, np.int64),
        path_start=np.asarray(path_start, np.int64),
        slot_start=np.asarray(slot_start, np.int64),
        expected=expected,
        n_features=booster.num_feature(),
        **{k: np.asarray(cols[k], dtype=t) for k, t in as_array.items()},
    )


def _weights(depth: int) -> np.ndarray:
    """w[k, s] = s! (k - 1 - s)! / k! for paths of k distinct features."""
    w = np.zeros((depth + 1, depth + 1))
    for k in range(1, depth + 1):
        for s in range(k):
            w[k, s] = math.factorial(s) * math.factorial(k - 1 - s) / math.factorial(k)
    return w


@numba.njit(cache=True, nogil=True)
def _leaf(k, follow, zero, weights, value, q, contrib):
    """The k contributions of one leaf, for a row whose path-following flags are `follow`."""
    # Q(t) = prod_j (z_j + o_j t), coefficients q[0..degree]
    q[0] = 1.0
    degree = 0
    for j in range(k):
        z = zero[j]
        if follow[j]:
            q[degree + 1] = q[degree]
            for s in range(degree, 0, -1):
                q[s] = q[s] * z + q[s - 1]
            q[0] *= z
            degree += 1
        else:
            for s in range(degree + 1):
                q[s] *= z
    # features the row does not follow: R = Q / z, contribution -v * sum w q
    not_followed = 0.0
    for s in range(degree + 1):
        not_followed += weights[k, s] * q[s]
    for j in range(k):
        if not follow[j]:
            contrib[j] = -value * not_followed
            continue
        z = zero[j]
        # R = Q / (t + z) by synthetic division, from the top coefficient down
        rs = q[degree]
        acc = weights[k, degree - 1] * rs
        for s in range(degree - 1, 0, -1):
            rs = q[s] - z * rs
            acc += weights[k, s - 1] * rs
        contrib[j] = value * (1.0 - z) * acc


@numba.njit(cache=True, nogil=True)
def _tables(leaf_value, slot_start, slot_zero, weights, table_start, table):
    """Contributions of every leaf with a table, for each of its 2^k following patterns."""
    k_max = weights.shape[0]
    follow = np.empty(k_max, np.int8)
    q = np.empty(k_max + 1)
    contrib = np.empty(k_max)
    for leaf in range(len(leaf_value)):
        if table_start[leaf + 1] == table_start[leaf]:
            continue
        s0, k = slot_start[leaf], slot_start[leaf + 1] - slot_start[leaf]
        for pattern in range(1 << k):
            for j in range(k):
                follow[j] = (pattern >> j) & 1
            _leaf(k, follow, slot_zero[s0 : s0 + k], weights, leaf_value[leaf], q, contrib)
            base = table_start[leaf] + pattern * k
            for j in range(k):
                table[base + j] = contrib[j]


BLOCK = 256  # rows processed together, tree by tree, so a leaf's table stays in cache


@numba.njit(cache=True, nogil=True, parallel=True)
def _kernel(
    x, node_start, feature, threshold, default_left, missing, leaf_start, leaf_value,
    path_start, path_node, path_left, path_slot, slot_start, slot_feature, slot_zero,
    weights, table_start, table, out,
):  # fmt: skip
    n_trees = len(node_start) - 1
    max_nodes = 1
    for t in range(n_trees):
        max_nodes = max(max_nodes, node_start[t + 1] - node_start[t])
    k_max = weights.shape[0]
    n_features = out.shape[1]
    n_blocks = (x.shape[0] + BLOCK - 1) // BLOCK
    for block in numba.prange(n_blocks):
        r0 = block * BLOCK
        size = min(r0 + BLOCK, x.shape[0]) - r0
        # feature-major copies of the block, so that the loops over rows vectorise
        xb = np.empty((x.shape[1], BLOCK))
        for r in range(size):
            for f in range(x.shape[1]):
                xb[f, r] = x[r0 + r, f]
        acc = np.zeros((n_features, BLOCK))
        goes_left = np.empty((max_nodes, BLOCK), np.int8)
        pattern = np.empty(BLOCK, np.int64)
        follow = np.empty(k_max, np.int8)
        q = np.empty(k_max + 1)
        contrib = np.empty(k_max)
        for t in range(n_trees):
            n0 = node_start[t]
            for n in range(node_start[t + 1] - n0):
                f, m, cut = feature[n0 + n], missing[n0 + n], threshold[n0 + n]
                default = 1 if default_left[n0 + n] else 0
                for r in range(size):
                    v = xb[f, r]
                    if np.isnan(v) and m != 2:
                        v = 0.0
                    if (m == 1 and abs(v) <= ZERO) or (m == 2 and np.isnan(v)):
                        goes_left[n, r] = default
                    else:
                        goes_left[n, r] = 1 if v <= cut else 0
            for leaf in range(leaf_start[t], leaf_start[t + 1]):
                s0, k = slot_start[leaf], slot_start[leaf + 1] - slot_start[leaf]
                if k == 0:
                    continue
                p0, p1 = path_start[leaf], path_start[leaf + 1]
                if table_start[leaf + 1] > table_start[leaf]:  # looked up
                    full = (1 << k) - 1
                    for r in range(size):
                        pattern[r] = full
                    for p in range(p0, p1):
                        node, want, bit = path_node[p], path_left[p], 1 << path_slot[p]
                        for r in range(size):
                            if goes_left[node, r] != want:
                                pattern[r] &= ~bit
                    base = table_start[leaf]
                    for j in range(k):
                        row = acc[slot_feature[s0 + j]]
                        for r in range(size):
                            row[r] += table[base + pattern[r] * k + j]
                    continue
                zero = slot_zero[s0 : s0 + k]
                for r in range(size):
                    for j in range(k):
                        follow[j] = 1
                    for p in range(p0, p1):
                        if goes_left[path_node[p], r] != path_left[p]:
                            follow[path_slot[p]] = 0
                    _leaf(k, follow, zero, weights, leaf_value[leaf], q, contrib)
                    for j in range(k):
                        acc[slot_feature[s0 + j], r] += contrib[j]
        for r in range(size):
            for f in range(n_features):
                out[r0 + r, f] = acc[f, r]


TABLE_MAX_SLOTS = 16  # leaves with up to this many distinct features get a lookup table
TABLE_MAX_BYTES = 256_000_000  # fewer leaves get one when the tables would take more


def lookup_tables(
    model: Forest, max_slots: int = TABLE_MAX_SLOTS, max_bytes: int = TABLE_MAX_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """Per leaf with at most `max_slots` distinct features, its contributions for every pattern.

    A leaf's contributions depend on the row only through which of its k features the row
    follows: 2^k patterns, worked out once here and looked up per row.
    """
    k = np.diff(model.slot_start)
    while True:
        sizes = np.where(k <= max_slots, (1 << np.minimum(k, max_slots)) * k, 0)
        if sizes.sum() * 8 <= max_bytes or max_slots == 0:
            break
        max_slots -= 1
    table_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    table = np.zeros(int(table_start[-1]))
    weights = _weights(int(k.max(initial=0)))
    _tables(model.leaf_value, model.slot_start, model.slot_zero, weights, table_start, table)
    return table_start, table


def shap_values(
    model: Forest, x: np.ndarray, tables: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """TreeSHAP values (rows x features, then the bias column), as LightGBM's pred_contrib."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.zeros((x.shape[0], model.n_features + 1))
    depth = int(np.diff(model.slot_start).max(initial=0))
    table_start, table = tables if tables is not None else lookup_tables(model)
    _kernel(
        x, model.node_start, model.feature, model.threshold, model.default_left, model.missing,
        model.leaf_start, model.leaf_value, model.path_start, model.path_node, model.path_left,
        model.path_slot, model.slot_start, model.slot_feature, model.slot_zero,
        _weights(depth), table_start, table, out,
    )  # fmt: skip
    out[:, -1] = model.expected
    return out
