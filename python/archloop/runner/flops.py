"""Forward FLOPs read off the traced graph, counted as torch.utils.flop_counter counts them.

FlopCounterMode runs the model under a TorchDispatchMode, and the first dispatch mode in a
process imports ~800 modules (dynamo, sympy): 2–3 s of CPU for every fresh interpreter
(bench/RESULTS.md). The graph IR already knows every op and every shape, so the same
numbers come from it for free: like FlopCounterMode, only matrix products, convolutions
and attention count (2 per multiply-add; bias, activations, norms and pooling are free).

An op whose FLOPs the graph cannot tell (an LSTM, einsum, a Transformer layer, …) raises
Unknown, and the caller falls back to FlopCounterMode for that candidate alone. The two
agree on the test corpus (python/tests/runner/test_flops.py).
"""

import math
from collections.abc import Sequence
from typing import Any

Shape = Sequence[int]


class Unknown(Exception):
    """The graph does not tell this op's FLOPs: count them another way."""


def conv(x: Shape, w: Shape, out: Shape, transposed: bool) -> int:
    """flop_counter.conv_flop_count: weight shape as stored (c_out, c_in/groups, *kernel)."""
    c_out, c_in, *kernel = w
    spatial = (x if transposed else out)[2:]
    return math.prod(spatial) * math.prod(kernel) * x[0] * c_out * c_in * 2


def matmul(a: Shape, b: Shape) -> int:
    """torch.matmul as it dispatches: mm/bmm count, dot and matrix-vector products do not."""
    if len(b) < 2 or not a:
        return 0
    m = a[-2] if len(a) >= 2 else 1
    k, n = a[-1], b[-1]
    batch = _broadcast(list(a[:-2]), list(b[:-2]))
    return 2 * math.prod(batch) * m * n * k


def linear(x: Shape, w: Shape) -> int:
    """F.linear(x, w): addmm/mm over the flattened leading dimensions; a 1-D x is a matrix-vector product."""
    if len(x) < 2:
        return 0
    out_features, in_features = w
    return 2 * math.prod(x[:-1]) * in_features * out_features


def attention(q: Shape, k: Shape, v: Shape) -> int:
    """scaled_dot_product_attention: q·kᵀ then weights·v."""
    batch = math.prod(q[:-2])
    length, source, depth, value_depth = q[-2], k[-2], q[-1], v[-1]
    return 2 * batch * length * source * (depth + value_depth)


def multihead_attention(module: Any, query: Shape, key: Shape, value: Shape) -> int:
    """nn.MultiheadAttention's slow path (the one a dispatch mode sees): in-projections,
    attention per head, out-projection."""
    embed = module.embed_dim
    if not module._qkv_same_embed_dim or len(query) != 3:
        raise Unknown("multihead attention with separate key/value sizes")
    batch_first = module.batch_first
    batch, length = (query[0], query[1]) if batch_first else (query[1], query[0])
    source = key[1] if batch_first else key[0]
    flops = 2 * batch * length * embed * embed  # q projection
    flops += 2 * 2 * batch * source * embed * embed  # k and v projections
    flops += 2 * batch * length * source * (embed + embed)  # heads together span embed
    flops += 2 * batch * length * embed * embed  # out projection
    return flops


def _broadcast(a: list[int], b: list[int]) -> list[int]:
    width = max(len(a), len(b))
    a, b = [1] * (width - len(a)) + a, [1] * (width - len(b)) + b
    return [max(x, y) for x, y in zip(a, b)]


# ---- torch.fx nodes --------------------------------------------------------------------

CONV_MODULES = {"Conv1d", "Conv2d", "Conv3d", "LazyConv1d", "LazyConv2d", "LazyConv3d"}
TRANSPOSED_MODULES = {"ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "LazyConvTranspose1d",
                      "LazyConvTranspose2d", "LazyConvTranspose3d"}
LINEAR_MODULES = {"Linear", "LazyLinear", "NonDynamicallyQuantizableLinear"}
# torch.nn leaf modules that run no matrix product or convolution.
FREE_MODULES = {
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "CELU", "SELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh",
    "Hardswish", "Hardsigmoid", "Hardtanh", "Hardshrink", "Softshrink", "Tanhshrink", "Softplus", "Softsign",
    "LogSigmoid", "Threshold", "GLU", "Softmax", "Softmin", "LogSoftmax", "Softmax2d", "MaxPool1d", "MaxPool2d",
    "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "LPPool1d", "LPPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "FractionalMaxPool2d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
    "LazyBatchNorm3d", "SyncBatchNorm", "LayerNorm", "RMSNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
    "InstanceNorm3d", "LocalResponseNorm", "CrossMapLRN2d", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "AlphaDropout", "FeatureAlphaDropout", "Identity", "Flatten", "Unflatten", "Upsample", "UpsamplingNearest2d",
    "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle", "ChannelShuffle", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
    "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
    "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
    "Embedding", "EmbeddingBag", "Fold", "Unfold", "CosineSimilarity", "PairwiseDistance",
}
# Functions and methods (by name) that run a matrix product or convolution.
CONV_FUNCTIONS = {"conv1d", "conv2d", "conv3d"}
TRANSPOSED_FUNCTIONS = {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
MATMUL_FUNCTIONS = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm"}
ADDMM_FUNCTIONS = {"addmm", "baddbmm"}
UNKNOWN_FUNCTIONS = {  # they do run products, in ways the graph does not spell out
    "einsum", "tensordot", "bilinear", "chain_matmul", "multi_dot", "cdist", "addbmm", "multi_head_attention_forward",
    "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "convolution",
    "_convolution", "conv_tbc", "inner", "kron", "vdot", "_scaled_mm",
}


def fx_node(module: Any | None, function: str | None, args: Sequence[Shape | None], out: Shape | None) -> int:
    """FLOPs of one fx node: `module` for call_module, else `function` (the callable's or
    method's name); `args` are the shapes of its positional tensor arguments (None for a
    non-tensor), `out` its output shape."""
    if module is not None:
        return _fx_module(module, args, out)
    name = (function or "").strip()
    if name in CONV_FUNCTIONS or name in TRANSPOSED_FUNCTIONS:
        return conv(_need(args, 0), _need(args, 1), _need_shape(out), name in TRANSPOSED_FUNCTIONS)
    if name == "linear":
        return linear(_need(args, 0), _need(args, 1))
    if name in MATMUL_FUNCTIONS:
        return matmul(_need(args, 0), _need(args, 1))
    if name in ADDMM_FUNCTIONS:
        return matmul(_need(args, 1), _need(args, 2))
    if name == "scaled_dot_product_attention":
        return attention(_need(args, 0), _need(args, 1), _need(args, 2))
    if name in UNKNOWN_FUNCTIONS:
        raise Unknown(name)
    return 0


def _fx_module(module: Any, args: Sequence[Shape | None], out: Shape | None) -> int:
    kind = type(module).__name__
    if kind in CONV_MODULES or kind in TRANSPOSED_MODULES:
        return conv(_need(args, 0), list(module.weight.shape), _need_shape(out), kind in TRANSPOSED_MODULES)
    if kind in LINEAR_MODULES:
        return linear(_need(args, 0), list(module.weight.shape))
    if kind == "MultiheadAttention":
        return multihead_attention(module, _need(args, 0), _need(args, 1), _need(args, 2))
    if kind in FREE_MODULES:
        return 0
    raise Unknown(kind)


# ---- torch.jit graphs ------------------------------------------------------------------

JIT_CONV = {"conv1d", "conv2d", "conv3d"}
JIT_TRANSPOSED = {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}


def jit_node(kind: str, args: Sequence[Shape | None], constants: dict[int, Any], out: Shape | None) -> int:
    """FLOPs of one aten:: node of a traced (inlined) graph; `args` are the shapes of its
    inputs by position (None when not a tensor), `constants` its constant inputs."""
    if not kind.startswith("aten::"):
        return 0
    name = kind.split("::", 1)[1]
    if name in JIT_CONV or name in JIT_TRANSPOSED:
        return conv(_need(args, 0), _need(args, 1), _need_shape(out), name in JIT_TRANSPOSED)
    if name in ("_convolution", "convolution"):  # (input, weight, bias, stride, padding, dilation, transposed, …)
        transposed = constants.get(6)
        if not isinstance(transposed, bool):
            raise Unknown(f"{kind} without a constant `transposed`")
        return conv(_need(args, 0), _need(args, 1), _need_shape(out), transposed)
    if name == "linear":
        return linear(_need(args, 0), _need(args, 1))
    if name in ("matmul", "mm", "bmm"):
        return matmul(_need(args, 0), _need(args, 1))
    if name in ("addmm", "baddbmm"):
        return matmul(_need(args, 1), _need(args, 2))
    if name == "scaled_dot_product_attention":
        return attention(_need(args, 0), _need(args, 1), _need(args, 2))
    if name in UNKNOWN_FUNCTIONS or name.startswith(("_native_multi_head_attention", "_transformer_encoder", "_scaled_dot")):
        raise Unknown(kind)
    return 0


def _need(args: Sequence[Shape | None], index: int) -> Shape:
    if index >= len(args) or args[index] is None:
        raise Unknown(f"argument {index} has no known shape")
    return args[index]  # type: ignore[return-value]


def _need_shape(shape: Shape | None) -> Shape:
    if shape is None:
        raise Unknown("output has no known shape")
    return shape
