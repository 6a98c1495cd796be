"""Budgets measured, not claimed: the weights a network holds and reads, and the FLOPs of
its forward passes, counted from below the candidate's code.

Two counts, kept by tensor storage so a tensor counts once however often it is shared:

- `stored(model)`: every floating tensor in the module tree (parameters and buffers),
  walked through the instances' own `__dict__`s, so neither an overridden `parameters()`
  nor a rebound `torch.nn.Module.parameters`/`buffers` hides one.
- `Meter`: a TorchDispatchMode around each forward. It sees every aten op the forward runs,
  whoever calls it, and counts (a) FLOPs as torch.utils.flop_counter counts them (matrix
  products, convolutions, attention; 2 per multiply-add) and (b) every tensor the forward
  reads that it did not compute itself and that is not its input: the weights it uses,
  wherever they are kept (parameters, buffers, module-level globals, numpy arrays turned
  into tensors), whatever their dtype.

Run on the very forward passes that are scored (train: the evaluation of the trained
instance; validate: the checked forward), a program that hides weights from the count, or
runs a smaller network while it is measured, is scored on what was measured.

Rebinding does not reach these counters: everything they call is bound here at import, and
the zygote imports this module before any candidate code runs; the tensor and storage
methods are those of torch's C types, which cannot be reassigned. The FLOP formulas are
this module's own (not torch.utils.flop_counter's, whose helpers a program could rebind).
What a program in the same interpreter can still do is take the runner over (rewrite
this module's private functions, switch torch's dispatch modes off inside its forward with
private APIs, compute outside torch): those counts stay claims (docs/sandbox.md).
"""

from types import MappingProxyType

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_TENSOR = torch._C.TensorBase  # a C type: its methods cannot be reassigned
_STORAGE = torch._C.StorageBase
_storage_of = _TENSOR.untyped_storage
_is_floating = _TENSOR.is_floating_point
_element_size = _TENSOR.element_size
_shape = _TENSOR.size
_numel = _TENSOR.numel
_storage_ptr = _STORAGE.data_ptr
_storage_bytes = _STORAGE.nbytes
_MODULE = torch.nn.Module
_push_mode = torch._C._push_on_torch_dispatch_stack  # what TorchDispatchMode.__enter__/__exit__ end in
_pop_mode = torch._C._pop_torch_dispatch_stack
_dict_of = object.__getattribute__
_values, _get = dict.values, dict.get  # a dict subclass's real items, not what it claims
# builtins too: a program can rebind builtins.sum or builtins.max for every module at once
_is_instance, _tuple, _list, _dict, _set = isinstance, tuple, list, dict, set
_len, _int, _bool, _id, _sum, _max = len, int, bool, id, sum, max


def _prod(values) -> int:
    total = 1
    for value in values:
        total *= _int(value)
    return total


def _mm(a, b) -> int:
    return 2 * a[0] * a[1] * b[1]


def _bmm(a, b) -> int:
    return 2 * a[0] * a[1] * a[2] * b[2]


def _conv(x, w, out, transposed: bool) -> int:
    return 2 * _prod((x if transposed else out)[2:]) * _prod(w) * x[0]


def _sdpa(q, k, v) -> int:  # (batch, heads, length, depth)
    return 2 * q[0] * q[1] * q[2] * k[2] * (q[3] + v[3])


def _sdpa_bshd(q, k, v) -> int:  # (batch, length, heads, depth)
    return _sdpa((q[0], q[2], q[1], q[3]), (k[0], k[2], k[1], k[3]), (v[0], v[2], v[1], v[3]))


def _native_mha(args, out) -> int:
    """nn.MultiheadAttention's fused eval path, one op: (query, key, value, embed_dim, ...),
    batch first; in-projections, attention over all heads, out-projection."""
    (batch, queries, embed), keys = _shape(args[0]), _shape(args[1])[1]
    return 2 * batch * embed * embed * (2 * queries + 2 * keys) + 4 * batch * queries * keys * embed


def _native_encoder_layer(args, out) -> int:
    """nn.TransformerEncoderLayer's fused eval path: self-attention, then the feed-forward."""
    batch, length, embed = _shape(args[0])
    hidden = _shape(args[14])[0]
    return 8 * batch * length * embed * embed + 4 * batch * length * length * embed + 4 * batch * length * embed * hidden


def _recurrent(args, out) -> int:
    """A fused recurrent layer (LSTM, GRU, RNN): every token through every weight matrix
    (args[1] is the list of weights for cuDNN, the input-to-hidden weights for oneDNN)."""
    tokens = _prod(_shape(args[0])) // _shape(args[0])[-1]
    weights = args[1] if _is_instance(args[1], (_tuple, _list)) else args[1:3]
    return 2 * tokens * _sum(_prod(_shape(w)) for w in weights if _is_instance(w, _TENSOR) and _len(_shape(w)) == 2)


def _conv_op(args, out, transposed_at: int | None) -> int:
    transposed = _bool(args[transposed_at]) if transposed_at is not None and _len(args) > transposed_at else False
    return _conv(_shape(args[0]), _shape(args[1]), _shape(out), transposed)


_aten = torch.ops.aten
FORMULAS = MappingProxyType({  # read-only; the forward ops torch.utils.flop_counter counts, by overload packet, and the fused
    # paths it does not count (their matrix products would go unseen)
    _aten.mm: lambda args, out: _mm(_shape(args[0]), _shape(args[1])),
    _aten.addmm: lambda args, out: _mm(_shape(args[1]), _shape(args[2])),
    _aten.bmm: lambda args, out: _bmm(_shape(args[0]), _shape(args[1])),
    _aten.baddbmm: lambda args, out: _bmm(_shape(args[1]), _shape(args[2])),
    _aten.convolution: lambda args, out: _conv_op(args, out, 6),
    _aten._convolution: lambda args, out: _conv_op(args, out, 6),
    _aten.convolution_overrideable: lambda args, out: _conv_op(args, out, 6),
    _aten.cudnn_convolution: lambda args, out: _conv_op(args, out, None),
    _aten._slow_conv2d_forward: lambda args, out: _conv_op(args, out, None),
    _aten._scaled_dot_product_efficient_attention: lambda args, out: _sdpa(*(_shape(t) for t in args[:3])),
    _aten._scaled_dot_product_flash_attention: lambda args, out: _sdpa(*(_shape(t) for t in args[:3])),
    _aten._scaled_dot_product_flash_attention_for_cpu: lambda args, out: _sdpa(*(_shape(t) for t in args[:3])),
    _aten._scaled_dot_product_cudnn_attention: lambda args, out: _sdpa(*(_shape(t) for t in args[:3])),
    _aten._flash_attention_forward: lambda args, out: _sdpa_bshd(*(_shape(t) for t in args[:3])),
    _aten._efficient_attention_forward: lambda args, out: _sdpa_bshd(*(_shape(t) for t in args[:3])),
    _aten._native_multi_head_attention: _native_mha,
    _aten._transformer_encoder_layer_fwd: _native_encoder_layer,
    _aten.mkldnn_rnn_layer: _recurrent,
    _aten._cudnn_rnn: _recurrent,
})
_formula = FORMULAS.get


def _tensors(value, out: list) -> list:
    if _is_instance(value, _TENSOR):
        out.append(value)
    elif _is_instance(value, (_tuple, _list)):
        for item in value:
            _tensors(item, out)
    elif _is_instance(value, _dict):
        for item in _values(value):
            _tensors(item, out)
    return out


def _key_and_size(tensor) -> tuple[int, int] | None:
    """(storage address, elements the storage holds), or None for an empty one. A tensor
    without a storage of its own (sparse, nested) counts its elements, keyed by identity."""
    try:
        storage = _storage_of(tensor)
    except (RuntimeError, NotImplementedError):
        size = _numel(tensor)
        return (_id(tensor), size) if size else None
    size = _storage_bytes(storage) // _element_size(tensor)
    return (_storage_ptr(storage), size) if size else None


def stored(model: torch.nn.Module, into: dict[int, int] | None = None) -> dict[int, int]:
    """Every floating parameter and buffer of the module tree: storage address -> elements."""
    into = {} if into is None else into
    seen, stack = _set(), [model]
    while stack:
        module = stack.pop()
        if _id(module) in seen:
            continue
        seen.add(_id(module))
        try:
            state = _dict_of(module, "__dict__")
        except AttributeError:
            continue
        for name in ("_parameters", "_buffers"):
            table = _get(state, name)
            for tensor in _values(table) if _is_instance(table, _dict) else ():
                if _is_instance(tensor, _TENSOR) and _is_floating(tensor) and (found := _key_and_size(tensor)):
                    into[found[0]] = found[1]
        children = _get(state, "_modules")
        stack.extend(child for child in (_values(children) if _is_instance(children, _dict) else ())
                     if _is_instance(child, _MODULE))
    return into


class Meter(TorchDispatchMode):
    """Counts FLOPs and the tensors read but not computed, over the forwards run inside it.
    `flops_per_image`: the largest per-image FLOPs of any one forward (`forward()`)."""

    def __init__(self):
        super().__init__()
        self.weights: dict[int, int] = {}  # storage address -> elements
        self.produced: set[int] = _set()
        self.flops = 0
        self.flops_per_image = 0.0

    def __enter__(self):  # torch's own (Python) __enter__/__exit__ could be rebound: not used
        _push_mode(self)
        return self

    def __exit__(self, *exc):
        _pop_mode(None)

    def forward(self, model, x):
        """model(x) under the meter; x's storage is the input, not a weight."""
        if (found := _key_and_size(x)) is not None:
            self.produced.add(found[0])
        before = self.flops
        with self:
            output = model(x)
        self.flops_per_image = _max(self.flops_per_image, (self.flops - before) / _max(1, _shape(x)[0]))
        return output

    def params(self, model: torch.nn.Module | None = None) -> int:
        """The weights read, together with what the module tree stores."""
        counted = _dict(self.weights)
        if model is not None:
            stored(model, counted)
        return _sum(_values(counted))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for tensor in _tensors(args, _tensors(kwargs, [])):
            found = _key_and_size(tensor)
            if found is not None and found[0] not in self.produced:
                self.weights[found[0]] = _max(_get(self.weights, found[0], 0), found[1])
        formula = _formula(func._overloadpacket)
        if formula is None:
            with self:  # a composite op: count what it is made of (as FlopCounterMode does)
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        if formula is not None:
            self.flops += formula(args, out)
        for tensor in _tensors(out, []):
            if (found := _key_and_size(tensor)) is not None:
                self.produced.add(found[0])
        return out


def warm_up() -> None:
    """The first dispatch mode of a process imports ~1 s of torch: the zygote pays it once."""
    meter = Meter()
    meter.forward(torch.nn.Linear(2, 2), torch.zeros(1, 2))
