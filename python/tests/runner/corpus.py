"""Candidate programs for the tests: valid nets, one invalid program per failure class,
and hostile programs. Kept tiny so that CPU tests stay fast."""

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"

TRAINING = '''
    def train_setup(self, prm):
        self.criteria = (nn.CrossEntropyLoss().to(self.device),)
        self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'], momentum=prm['momentum'])

    def learn(self, train_data):
        for inputs, labels in train_data:
            inputs, labels = inputs.to(self.device), labels.to(self.device)
            self.optimizer.zero_grad()
            loss = self.criteria[0](self(inputs), labels)
            loss.backward()
            self.optimizer.step()
'''


def net(init: str, forward: str, extra: str = "", training: str = TRAINING, hyper: str = "{'lr', 'momentum'}") -> str:
    return (
        HEADER + extra
        + f"\ndef supported_hyperparameters():\n    return {hyper}\n\n"
        + "class Net(nn.Module):\n    def __init__(self, in_shape, out_shape, prm, device):\n"
        + "        super().__init__()\n        self.device = device\n"
        + "".join(f"        {line}\n" for line in init.strip().splitlines())
        + "\n    def forward(self, x):\n"
        + "".join(f"        {line}\n" for line in forward.strip().splitlines())
        + training
    )


SIMPLE_INIT = """
c = in_shape[1]
self.conv1 = nn.Conv2d(c, 8, 3, padding=1)
self.pool = nn.MaxPool2d(2)
self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
self.head = nn.Linear(16, out_shape[0])
"""
SIMPLE_FORWARD = """
x = self.pool(F.relu(self.conv1(x)))
x = F.relu(self.conv2(x))
x = F.adaptive_avg_pool2d(x, 1).flatten(1)
return self.head(x)
"""
SIMPLE = net(SIMPLE_INIT, SIMPLE_FORWARD)
# Its parameter count (C·H·W·classes + classes) states the in_shape it was built for, and
# its forward fails on any other image size.
FLAT = net("self.fc = nn.Linear(in_shape[1] * in_shape[2] * in_shape[3], out_shape[0])", "return self.fc(x.flatten(1))")

VALID = {
    "simple": SIMPLE,
    "residual_add": net(
        """
self.stem = nn.Conv2d(in_shape[1], 8, 3, padding=1)
self.a = nn.Conv2d(8, 8, 3, padding=1)
self.b = nn.Conv2d(8, 8, 3, padding=1)
self.bn = nn.BatchNorm2d(8)
self.fc = nn.Linear(8, out_shape[0])
""",
        """
x = F.relu(self.stem(x))
y = self.b(F.relu(self.a(x)))
x = F.relu(self.bn(x + y))
return self.fc(torch.mean(x, dim=(2, 3)))
""",
    ),
    "concat": net(
        """
self.p1 = nn.Conv2d(in_shape[1], 4, 1)
self.p3 = nn.Conv2d(in_shape[1], 4, 3, padding=1)
self.p5 = nn.Sequential(nn.Conv2d(in_shape[1], 4, 5, padding=2), nn.ReLU())
self.pool = nn.AdaptiveAvgPool2d((1, 1))
self.fc = nn.Linear(12, out_shape[0])
""",
        """
x = torch.cat([self.p1(x), self.p3(x), self.p5(x)], dim=1)
return self.fc(self.pool(x).view(x.size(0), -1))
""",
    ),
    "depthwise_separable": net(
        """
self.stem = nn.Conv2d(in_shape[1], 8, 3, stride=2, padding=1)
self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
self.pw = nn.Conv2d(8, 16, 1, bias=False)
self.bn = nn.BatchNorm2d(16)
self.fc = nn.Linear(16, out_shape[0])
""",
        """
x = F.relu(self.stem(x))
x = F.relu(self.bn(self.pw(self.dw(x))))
return self.fc(F.adaptive_max_pool2d(x, 1).flatten(1))
""",
    ),
    "grouped_conv": net(
        """
self.stem = nn.Conv2d(in_shape[1], 8, 3, padding=1)
self.grouped = nn.Conv2d(8, 16, 3, padding=1, groups=4)
self.fc = nn.Linear(16, out_shape[0])
""",
        """
x = F.gelu(self.grouped(F.relu(self.stem(x))))
return self.fc(x.mean(dim=[2, 3]))
""",
    ),
    "attention": net(
        """
self.patch = nn.Conv2d(in_shape[1], 16, 8, stride=8)
self.norm = nn.LayerNorm(16)
self.attn = nn.MultiheadAttention(16, num_heads=2, batch_first=True)
self.fc = nn.Linear(16, out_shape[0])
""",
        """
tokens = self.patch(x).flatten(2).transpose(1, 2)
h = self.norm(tokens)
attended, _ = self.attn(h, h, h)
tokens = tokens + attended
return self.fc(tokens.mean(dim=1))
""",
    ),
    "bn_dropout_adaptive": net(
        """
self.features = nn.Sequential(
    nn.Conv2d(in_shape[1], 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
    nn.Dropout2d(prm.get('dropout', 0.2)), nn.AdaptiveAvgPool2d(4))
self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * 16, out_shape[0]))
""",
        "return self.classifier(self.features(x))",
        hyper="{'lr', 'momentum', 'dropout'}",
    ),
    "data_dependent_flow": net(
        SIMPLE_INIT,
        """
x = self.pool(F.relu(self.conv1(x)))
if x.sum() > 0:
    x = F.relu(self.conv2(x))
else:
    x = self.conv2(x)
return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))
""",
    ),
}

# The same structure as SIMPLE, written differently: other names, module vs functional, view vs flatten.
SIMPLE_RENAMED = HEADER + '''
def supported_hyperparameters():
    return {'lr'}

class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.convolution = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
        self.activation = nn.ReLU()

    def forward(self, t):
        return self.activation(self.convolution(t))

class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        self.device = device
        self.first = Block(in_shape[1], 8)
        self.downsample = nn.MaxPool2d(kernel_size=2)
        self.second = Block(8, 16)
        self.squash = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, out_shape[0])

    def forward(self, images):
        h = self.downsample(self.first(images))
        h = self.squash(self.second(h))
        return self.classifier(h.view(h.size(0), -1))

    def train_setup(self, prm):
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'])

    def learn(self, train_data):
        for x, y in train_data:
            self.optimizer.zero_grad()
            self.criterion(self(x), y).backward()
            self.optimizer.step()
'''
SIMPLE_WIDER = SIMPLE.replace("nn.Conv2d(8, 16, 3, padding=1)", "nn.Conv2d(8, 24, 3, padding=1)").replace(
    "nn.Linear(16, out_shape[0])", "nn.Linear(24, out_shape[0])")

# failure class -> program (validate stage)
INVALID_VALIDATE = {
    "syntax": "import torch\ndef supported_hyperparameters(:\n    return {'lr'}\n",
    "contract": SIMPLE.replace("    def learn(self, train_data):", "    def learn_it(self, train_data):"),
    "import": "import torch_extra_layers_that_do_not_exist\n" + SIMPLE,
    "instantiate": SIMPLE.replace("self.head = nn.Linear(16, out_shape[0])", "self.head = nn.Linear(16, out_shape[0], 'x', 'y', 'z')"),
    "forward": SIMPLE.replace("self.head = nn.Linear(16, out_shape[0])", "self.head = nn.Linear(32, out_shape[0])"),
    "shape": SIMPLE.replace("return self.head(x)", "return self.head(x)[:, :5]"),
    "non-finite": SIMPLE.replace("return self.head(x)", "return self.head(x) * float('nan')"),
    "too-large": SIMPLE.replace("self.head = nn.Linear(16, out_shape[0])",
                                "self.head = nn.Linear(16, out_shape[0])\n        self.big = nn.Linear(4000, 4000)"),
}
CONTRACT_BAD_HYPER = SIMPLE.replace("return {'lr', 'momentum'}", "return {'lr', 'weight_decay'}")

NAN_LOSS = SIMPLE.replace("loss = self.criteria[0](self(inputs), labels)",
                          "loss = self.criteria[0](self(inputs), labels) * float('nan')")
TRAIN_ERROR = SIMPLE.replace("for inputs, labels in train_data:", "raise ValueError('learn is broken')\n        for inputs, labels in train_data:")
SLOW_LEARN = SIMPLE.replace("for inputs, labels in train_data:", "import time\n        for inputs, labels in train_data:\n            time.sleep(0.05)")
EVAL_ERROR = SIMPLE.replace("x = self.pool(F.relu(self.conv1(x)))",
                            "if not self.training and x.shape[0] > 100:\n            raise RuntimeError('no eval')\n        x = self.pool(F.relu(self.conv1(x)))")
CONSTANT = SIMPLE.replace("return self.head(x)", "return self.head(x) * 0.0").replace(
    "loss.backward()", "pass")
OOM = SIMPLE.replace("self.head = nn.Linear(16, out_shape[0])", "self.head = nn.Linear(16, out_shape[0])\n        self.junk = bytearray(10**15)")
