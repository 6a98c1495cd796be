"""Graph IR of a model: torch.fx symbolic trace with propagated shapes, else torch.jit.trace.

The IR carries no names from the source (variable, attribute or class names of user
modules are dropped) so that the structural hash depends on structure only. Op names
are canonicalized: F.relu, torch.relu, x.relu() and nn.ReLU are all `relu`.
"""

import operator
import re
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx

from archloop.runner import flops as flop_count
from archloop.runner.protocol import GraphIR, GraphNode
from archloop.runner.structural_hash import COMMUTATIVE  # noqa: F401  (re-exported for callers)

# Hyperparameters of built-in modules that define structure (names, not weights).
MODULE_ATTRS = (
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "padding_mode",
    "in_features", "out_features", "num_features", "affine", "track_running_stats", "eps", "p",
    "output_size", "negative_slope", "dim", "start_dim", "end_dim", "num_heads", "embed_dim", "batch_first",
    "normalized_shape", "elementwise_affine", "num_groups", "num_channels", "scale_factor", "mode",
    "ceil_mode", "count_include_pad", "approximate", "upscale_factor", "hidden_size", "num_layers",
    "bidirectional", "num_embeddings", "embedding_dim",
)
ALIASES = {
    "iadd": "add", "radd": "add", "mul_": "mul", "imul": "mul", "rmul": "mul", "truediv": "div", "itruediv": "div",
    "concat": "cat", "concatenate": "cat", "flatten": "reshape", "view": "reshape", "view_as": "reshape",
    "matmul": "matmul", "bmm": "matmul", "mm": "matmul", "rsub": "sub", "isub": "sub",
    "batch_norm2d": "batch_norm", "batch_norm1d": "batch_norm", "re_lu": "relu", "re_lu6": "relu6",
    "ge_lu": "gelu", "si_lu": "silu", "conv2d": "conv2d", "_convolution": "conv", "addmm": "linear",
    "multihead_attention": "multihead_attention", "adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "transpose": "transpose", "permute": "permute", "softmax": "softmax", "_softmax": "softmax",
    "dropout": "dropout", "feature_dropout": "dropout",
}
IDENTITY_OPS = {"contiguous", "identity", "clone", "detach", "to", "type_as", "float"}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def canonical_op(name: str) -> str:
    base = snake(name).strip("_")
    base = base[:-1] if base.endswith("_") else base
    return ALIASES.get(base, base)


def plain(value: Any) -> Any:
    """A JSON-able rendering of a constant argument or attribute."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list, torch.Size)):
        return [plain(v) for v in value]
    if isinstance(value, torch.dtype):
        return str(value)
    return type(value).__name__


def module_attrs(module: torch.nn.Module) -> dict[str, Any]:
    attrs = {name: plain(getattr(module, name)) for name in MODULE_ATTRS if hasattr(module, name)}
    if hasattr(module, "bias") and not isinstance(getattr(module, "bias"), bool):
        attrs["bias"] = getattr(module, "bias") is not None
    return {k: v for k, v in attrs.items() if not callable(v)}


@dataclass(frozen=True)
class TensorMeta:
    shape: list[int]
    dtype: str


SHAPE = "archloop_shape"  # node.meta key: a TensorMeta, TUPLE for a tuple holding tensors, absent otherwise
TUPLE = "tuple"


class Shapes(torch.fx.Interpreter):
    """Runs the traced graph on the example and records each node's output shape, as
    torch.fx's ShapeProp does, without what ShapeProp imports on first use (sympy, the
    fake-tensor machinery: ~1 s of CPU in every fresh interpreter)."""

    def run_node(self, n: torch.fx.Node) -> Any:
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            n.meta[SHAPE] = TensorMeta(list(result.shape), str(result.dtype).replace("torch.", ""))
        else:
            found: list[torch.Tensor] = []
            torch.fx.node.map_aggregate(result, lambda v: found.append(v) if isinstance(v, torch.Tensor) else None)
            if found:
                n.meta[SHAPE] = TUPLE
        return result


def _meta_shape(meta: Any) -> tuple[list[int] | None, str | None]:
    if isinstance(meta, TensorMeta):
        return list(meta.shape), meta.dtype
    return None, None


def _fx_target(gm: torch.fx.GraphModule, node: torch.fx.Node) -> tuple[str, dict[str, Any]]:
    if node.op == "call_module":
        module = gm.get_submodule(node.target)
        return canonical_op(type(module).__name__), module_attrs(module)
    if node.op == "call_method":
        return canonical_op(node.target), {}
    if node.op == "get_attr":
        return "param", {}
    target = node.target
    name = getattr(target, "__name__", str(target))
    if target is operator.getitem:
        return "getitem", {}
    return canonical_op(name), {}


def _constants(node: torch.fx.Node) -> dict[str, Any]:
    consts: dict[str, Any] = {}
    for i, arg in enumerate(node.args):
        if not isinstance(arg, torch.fx.Node) and not (isinstance(arg, (list, tuple)) and any(isinstance(a, torch.fx.Node) for a in arg)):
            consts[f"arg{i}"] = plain(arg)
    for key, arg in node.kwargs.items():
        if not isinstance(arg, torch.fx.Node):
            consts[key] = plain(arg)
    return consts


def _fx_flops(gm: torch.fx.GraphModule, node: torch.fx.Node) -> int:
    def shape(arg: Any) -> list[int] | None:
        meta = arg.meta.get(SHAPE) if isinstance(arg, torch.fx.Node) else None
        return list(meta.shape) if isinstance(meta, TensorMeta) else None

    module = gm.get_submodule(node.target) if node.op == "call_module" else None
    function = node.target if node.op == "call_method" else getattr(node.target, "__name__", str(node.target))
    return flop_count.fx_node(module, None if module is not None else function, [shape(a) for a in node.args],
                              shape(node))


def fx_graph(model: torch.nn.Module, example: torch.Tensor) -> tuple[GraphIR, int | None]:
    """The IR and the forward FLOPs of the whole batch (None when an op's count is unknown)."""
    gm = torch.fx.symbolic_trace(model)
    Shapes(gm).run(example)
    index: dict[torch.fx.Node, int] = {}  # tensor-valued nodes -> position in the IR
    forward: dict[torch.fx.Node, int] = {}  # identity ops forward to their input
    nodes: list[GraphNode] = []
    output: list[int] = []
    flops: int | None = 0

    def refs(node: torch.fx.Node) -> list[int]:
        found: list[int] = []
        torch.fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(index.get(n, forward.get(n, -1))) or n)
        return [i for i in found if i >= 0]

    for node in gm.graph.nodes:
        if node.op == "output":
            output = refs(node)
            continue
        meta = node.meta.get(SHAPE)
        if node.op == "placeholder":
            shape, dtype = _meta_shape(meta)
            index[node] = len(nodes)
            nodes.append(GraphNode(op="input", target="input", shape=shape, dtype=dtype))
            continue
        if flops is not None and node.op in ("call_module", "call_function", "call_method"):
            try:
                flops += _fx_flops(gm, node)
            except Exception:  # flop_count.Unknown, or an op shaped unlike its usual signature
                flops = None
        op, attrs = _fx_target(gm, node)
        inputs = refs(node)
        if op in IDENTITY_OPS and len(inputs) == 1:
            forward[node] = inputs[0]
            continue
        if isinstance(meta, TensorMeta):
            shape, dtype = _meta_shape(meta)
        elif meta == TUPLE:  # tuple-valued op (e.g. attention): no single shape
            shape, dtype = None, None
        else:
            continue  # non-tensor value (x.size(0), shape arithmetic): not structure
        if node.op in ("call_function", "call_method"):
            attrs = {**attrs, **_constants(node)}
        index[node] = len(nodes)
        nodes.append(GraphNode(op=node.op, target=op, attrs=attrs, inputs=inputs, shape=shape, dtype=dtype))
    return GraphIR(method="fx", nodes=nodes, output=output), flops


def _jit_shape(value: torch._C.Value) -> tuple[list[int] | None, str | None]:
    kind = value.type()
    if isinstance(kind, torch._C.TensorType):
        sizes = kind.sizes()
        dtype = kind.dtype()
        return (list(sizes) if sizes is not None else None), (str(dtype).replace("torch.", "") if dtype else None)
    return None, None


def _jit_flops(node: torch._C.Node, attributes: dict[str, Any]) -> int:
    """attributes: the module objects and parameters behind prim::GetAttr values (the
    traced types of parameters carry no sizes)."""
    def shape(value: torch._C.Value) -> list[int] | None:
        found = attributes.get(value.debugName())
        if isinstance(found, torch.Tensor):
            return list(found.shape)
        return _jit_shape(value)[0] if isinstance(value.type(), torch._C.TensorType) else None

    values = list(node.inputs())
    shapes = [shape(v) for v in values]
    constants = {i: v.toIValue() for i, v in enumerate(values) if v.node().kind() == "prim::Constant"}
    outputs = list(node.outputs())
    return flop_count.jit_node(node.kind(), shapes, constants, _jit_shape(outputs[0])[0] if outputs else None)


def jit_graph(model: torch.nn.Module, example: torch.Tensor) -> tuple[GraphIR, int | None]:
    """The IR and the forward FLOPs of the whole batch (None when an op's count is unknown)."""
    with warnings.catch_warnings():  # jit.trace is deprecated upstream; it is only the fallback here
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (example,), check_trace=False, strict=False)
    graph = traced.inlined_graph
    index: dict[str, int] = {}
    nodes: list[GraphNode] = []
    flops: int | None = 0
    inputs = list(graph.inputs())
    attributes: dict[str, Any] = {inputs[0].debugName(): model}
    for value in inputs[1:]:  # inputs[0] is the module itself
        shape, dtype = _jit_shape(value)
        index[value.debugName()] = len(nodes)
        nodes.append(GraphNode(op="input", target="input", shape=shape, dtype=dtype))
    for node in graph.nodes():
        kind = node.kind()
        outputs = list(node.outputs())
        if kind == "prim::GetAttr" and outputs:
            owner = attributes.get(next(node.inputs()).debugName())
            if owner is not None:
                attributes[outputs[0].debugName()] = getattr(owner, node.s("name"), None)
        if kind == "prim::GetAttr" and outputs and isinstance(outputs[0].type(), torch._C.TensorType):
            shape, dtype = _jit_shape(outputs[0])
            index[outputs[0].debugName()] = len(nodes)
            nodes.append(GraphNode(op="get_attr", target="param", shape=shape, dtype=dtype))
            continue
        if not kind.startswith("aten::"):
            continue
        if flops is not None:
            try:
                flops += _jit_flops(node, attributes)
            except Exception:  # flop_count.Unknown, or an op shaped unlike its usual signature
                flops = None
        refs = [index[v.debugName()] for v in node.inputs() if v.debugName() in index]
        consts = {}
        for i, v in enumerate(node.inputs()):
            producer = v.node()
            if producer.kind() == "prim::Constant" and v.debugName() not in index:
                consts[f"arg{i}"] = plain(v.toIValue())
        op = canonical_op(kind.split("::", 1)[1])
        if op in IDENTITY_OPS and len(refs) == 1:
            for out in outputs:
                index[out.debugName()] = refs[0]
            continue
        shape, dtype = _jit_shape(outputs[0]) if outputs else (None, None)
        position = len(nodes)
        nodes.append(GraphNode(op="call_function", target=op, attrs=consts, inputs=refs, shape=shape, dtype=dtype))
        for out in outputs:
            index[out.debugName()] = position
    output = [index[v.debugName()] for v in graph.outputs() if v.debugName() in index]
    if not output:  # tuple outputs are packed by prim::TupleConstruct
        for v in graph.outputs():
            output += [index[i.debugName()] for i in v.node().inputs() if i.debugName() in index]
    return GraphIR(method="jit", nodes=nodes, output=output), flops


def build(model: torch.nn.Module, example: torch.Tensor) -> tuple[GraphIR, list[str], int | None]:
    """The IR, any warnings (why fx was not usable) and the batch's forward FLOPs (None:
    unknown from the graph). Traced in eval mode without grad."""
    with torch.no_grad():
        try:
            graph, flops = fx_graph(model, example)
            return graph, [], flops
        except Exception as error:  # data-dependent control flow, unsupported ops…
            reason = f"torch.fx trace failed ({type(error).__name__}: {str(error)[:300]}); used torch.jit.trace"
        graph, flops = jit_graph(model, example)
        return graph, [reason], flops
