"""Loading the candidate module and constructing its Net under the contract."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from archloop.runner.contract import check_hyperparameters
from archloop.runner.failures import CandidateFailure, FailureClass
from archloop.runner.protocol import DatasetSpec, TrainingSection

ALLOWED_PRM = {"lr", "momentum", "dropout", "batch"}
# Bound before any candidate code runs (the zygote imports this module first).
_MODULE = torch.nn.Module
_MODULE_INIT_STATE = "_parameters"


def import_candidate(code: str, job_dir: str) -> ModuleType:
    path = Path(job_dir) / "candidate.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("candidate", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["candidate"] = module
    spec.loader.exec_module(module)
    return module


def prm_of(training: TrainingSection) -> dict[str, Any]:
    return {"lr": training.lr, "momentum": training.momentum, "dropout": training.dropout, "batch": training.batch_size}


def check_supported(module: ModuleType) -> set[str]:
    function = getattr(module, "supported_hyperparameters", None)
    if not callable(function):
        raise CandidateFailure(FailureClass.CONTRACT, "supported_hyperparameters is not callable", "contract")
    return check_hyperparameters(function(), ALLOWED_PRM)


def instantiate(module: ModuleType, spec: DatasetSpec, batch: int, prm: dict[str, Any], device: torch.device) -> torch.nn.Module:
    net_class = getattr(module, "Net", None)
    if not isinstance(net_class, type) or not issubclass(net_class, torch.nn.Module):
        raise CandidateFailure(FailureClass.CONTRACT, "Net is not a subclass of torch.nn.Module", "contract")
    in_shape = (batch, *spec.input_shape)
    model = net_class(in_shape, (spec.classes,), dict(prm), device)
    # An instance whose class only pretends to be a Module (a metaclass rewriting its MRO,
    # a __class__ property) never ran Module.__init__.
    if not isinstance(model, _MODULE) or _MODULE_INIT_STATE not in object.__getattribute__(model, "__dict__"):
        raise CandidateFailure(FailureClass.CONTRACT, "Net(...) did not build a torch.nn.Module", "contract")
    return model.to(device)

