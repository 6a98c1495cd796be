"""FLOPs from the graph IR against torch's FlopCounterMode, on both tracers."""

import pytest

from .corpus import VALID

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class Functional(nn.Module):
    """conv/linear/matmul through functions and methods, weights read as attributes."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.proj = nn.Parameter(torch.randn(12, 4))
        self.mix = nn.Parameter(torch.randn(12, 12))

    def forward(self, x):
        x = F.conv2d(x, self.w - self.w.mean(), padding=1)
        x = self.up(F.relu(x))  # transposed: counted over the input's spatial size
        tokens = x.flatten(2).transpose(1, 2)  # (B, HW, 4)
        tokens = F.linear(tokens, self.proj)  # 3-D input: mm over the flattened rows
        tokens = tokens @ self.mix  # 3-D @ 2-D folds into mm
        scores = torch.matmul(tokens, tokens.transpose(1, 2))  # batched: bmm
        tokens = torch.bmm(scores.softmax(-1), tokens)
        pooled = tokens.mean(1)
        return torch.addmm(torch.zeros(10), pooled[:, :10], torch.eye(10)) + pooled.matmul(torch.ones(12))[:, None]


class Attention(nn.Module):
    def __init__(self, heads=2):
        super().__init__()
        self.q = nn.Linear(3, 8)
        self.heads = heads

    def forward(self, x):
        tokens = self.q(x.flatten(2).transpose(1, 2))
        b, n, e = tokens.shape
        split = tokens.view(b, n, self.heads, e // self.heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(split, split, split)
        return out.transpose(1, 2).reshape(b, n, e).mean(1)[:, :2]


class CrossAttention(nn.Module):
    """Query and key differ: nn.MultiheadAttention takes its slow path, which FlopCounterMode sees."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        out, _ = self.attn(tokens[:, :4], tokens, tokens)
        return out.mean(1)


class DataDependent(Functional):
    """The same ops behind data-dependent control flow: fx fails, torch.jit.trace counts."""

    def forward(self, x):
        if x.sum() > -1e9:
            return super().forward(x)
        return x


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 8, batch_first=True)

    def forward(self, x):
        out, _ = self.rnn(x.flatten(2).transpose(1, 2))
        return out[:, -1]


class Einsum(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 5))

    def forward(self, x):
        return torch.einsum("bchw,cd->bd", x, self.w)


def counted(model, x):
    """torch's own FlopCounterMode: the reference."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def metered(model, x):
    """What validate and train count (meter.py), per batch."""
    from archloop.runner.meter import Meter

    meter = Meter()
    with torch.no_grad():
        meter.forward(model, x)
    return round(meter.flops_per_image * x.shape[0])


def from_graph(model, x):
    from archloop.runner import graph_ir

    graph, _, flops = graph_ir.build(model, x)
    return graph.method, flops


def corpus_net(name):
    namespace: dict = {}
    exec(compile(VALID[name], name, "exec"), namespace)
    return namespace["Net"]((2, 3, 32, 32), (10,), {"lr": 0.01, "momentum": 0.9, "dropout": 0.2}, "cpu").eval()


@pytest.mark.parametrize("name", sorted(set(VALID) - {"attention"}))
def test_corpus_matches_flop_counter(name, torch_threads):
    model, x = corpus_net(name), torch.randn(2, 3, 32, 32)
    method, flops = from_graph(model, x)
    assert method == ("jit" if name == "data_dependent_flow" else "fx")
    assert flops == counted(model, x) == metered(model, x) > 0


@pytest.mark.parametrize("model, method", [(Functional(), "fx"), (DataDependent(), "jit"), (Attention(), "fx"),
                                           (CrossAttention(), "fx")], ids=["functional", "jit", "sdpa", "mha"])
def test_functions_methods_and_attention_match_flop_counter(model, method, torch_threads):
    x = torch.randn(2, 3, 16, 16)
    traced, flops = from_graph(model.eval(), x)
    assert traced == method
    assert flops == counted(model, x) == metered(model, x) > 0


def test_self_attention_counts_what_the_fused_path_hides(torch_threads):
    """nn.MultiheadAttention(h, h, h) in eval runs one fused kernel that FlopCounterMode does
    not count; the graph counts its projections and attention like the slow path."""
    model, x = corpus_net("attention"), torch.randn(2, 3, 32, 32)
    _, flops = from_graph(model, x)
    tokens, embed, batch = 16, 16, 2
    attention = 2 * batch * tokens * embed * 3 * embed + 2 * batch * tokens * tokens * 2 * embed + 2 * batch * tokens * embed * embed
    assert flops == counted(model, x) + attention == metered(model, x)


@pytest.mark.parametrize("model", [Recurrent(), Einsum()], ids=["lstm", "einsum"])
def test_ops_the_graph_cannot_count_are_unknown(model, torch_threads):
    _, flops = from_graph(model.eval(), torch.randn(2, 3, 8, 8))
    assert flops is None


def test_the_meter_counts_what_the_graph_cannot(torch_threads):
    x = torch.randn(2, 3, 8, 8)
    assert metered(Einsum().eval(), x) == counted(Einsum(), x) > 0
    # The fused LSTM is one op that FlopCounterMode does not count: 2 × tokens × its weights.
    tokens, weights = 2 * 64, 4 * 8 * (3 + 8)
    assert counted(Recurrent().eval(), x) == 0 and metered(Recurrent().eval(), x) == 2 * tokens * weights


def test_validate_counts_with_the_meter(validate_inprocess):
    result = validate_inprocess(VALID["simple"])
    assert result.flops == 2065024 / 2
