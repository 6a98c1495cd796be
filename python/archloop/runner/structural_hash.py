"""A canonical hash of a graph IR: Merkle hashing of the DAG from its outputs.

Each node's digest covers its op, its structural attributes, its output shape and the
digests of its inputs (sorted for commutative ops), never node order or names. Two
programs computing the same graph hash equally however their code is written. Written
here because no library offers a canonical hash for labelled computation DAGs
(networkx's Weisfeiler-Lehman hash is for undirected-style refinement and may collide).
"""

import hashlib
import json

from archloop.runner.protocol import GraphIR, GraphNode

COMMUTATIVE = {"add", "mul", "maximum", "minimum"}

# Parameter-free ops: their constants are spelled differently across call styles
# (F.max_pool2d(x, 2) vs nn.MaxPool2d(2)); the output shape carries their effect.
_CONSTANTS_IN_HASH = {"getitem", "transpose", "permute", "softmax", "cat", "chunk", "split", "mean", "sum"}


# Attributes that only modules with weights have: their hyperparameters are structure.
_WEIGHT_ATTRS = {"in_channels", "in_features", "num_features", "normalized_shape", "embed_dim", "num_embeddings",
                 "hidden_size", "num_groups"}


def _label(node: GraphNode) -> dict:
    weighted = node.op == "call_module" and bool(_WEIGHT_ATTRS & node.attrs.keys())
    hashed_attrs = node.attrs if weighted or node.target in _CONSTANTS_IN_HASH else {}
    hashed_attrs = {k: v for k, v in hashed_attrs.items() if k not in ("inplace",)}
    return {"op": node.target, "attrs": hashed_attrs, "shape": node.shape}


def node_digests(graph: GraphIR) -> list[str]:
    digests: list[str] = []
    for node in graph.nodes:  # inputs always precede their users in both tracers
        parents = [digests[i] for i in node.inputs]
        if node.target in COMMUTATIVE:
            parents.sort()
        payload = json.dumps({"label": _label(node), "in": parents}, sort_keys=True, separators=(",", ":"))
        digests.append(hashlib.sha256(payload.encode()).hexdigest())
    return digests


def structural_hash(graph: GraphIR) -> str:
    digests = node_digests(graph)
    payload = json.dumps({"method": graph.method, "out": [digests[i] for i in graph.output]}, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()
