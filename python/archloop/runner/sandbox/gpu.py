"""Which GPUs a sandbox may open: only those the worker was allotted (CUDA_VISIBLE_DEVICES).

CUDA numbers devices by PCI bus order when CUDA_DEVICE_ORDER=PCI_BUS_ID (set inside the
sandbox), and the driver lists each GPU under /proc/driver/nvidia/gpus/<pci address>/ with
its UUID and device minor (the N of /dev/nvidiaN). That is enough to map every entry of
CUDA_VISIBLE_DEVICES (an index or a UUID prefix) to the one device node to bind. Parsing
is pure; reading /proc and /dev is kept to `installed()`.
"""

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

PROC_GPUS = "/proc/driver/nvidia/gpus"
SHARED_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")


@dataclass(frozen=True)
class Gpu:
    minor: int
    uuid: str = ""
    pci: str = ""  # e.g. 0000:3b:00.0


@dataclass(frozen=True)
class Allotment:
    gpus: tuple[Gpu, ...]
    warnings: tuple[str, ...] = ()


def parse_information(pci: str, text: str) -> Gpu | None:
    minor = re.search(r"^Device Minor:\s*(\d+)", text, re.MULTILINE)
    uuid = re.search(r"^GPU UUID:\s*(\S+)", text, re.MULTILINE)
    if minor is None:
        return None
    return Gpu(minor=int(minor.group(1)), uuid=uuid.group(1) if uuid else "", pci=pci.lower())


def installed(proc_root: str = PROC_GPUS, dev_root: str = "/dev") -> list[Gpu]:
    """The machine's GPUs in PCI bus order (CUDA's order under CUDA_DEVICE_ORDER=PCI_BUS_ID)."""
    gpus = []
    for directory in sorted(glob.glob(f"{proc_root}/*")):
        try:
            gpu = parse_information(os.path.basename(directory), Path(directory, "information").read_text())
        except OSError:
            continue
        if gpu is not None:
            gpus.append(gpu)
    if gpus:
        return sorted(gpus, key=lambda g: g.pci)
    # No driver information (unusual): fall back to the device nodes, in minor order.
    minors = sorted(int(m.group(1)) for path in glob.glob(f"{dev_root}/nvidia*")
                    if (m := re.fullmatch(r".*/nvidia(\d+)", path)))
    return [Gpu(minor=m) for m in minors]


def allot(visible: str | None, gpus: list[Gpu]) -> Allotment:
    """The GPUs CUDA_VISIBLE_DEVICES names (all of them when it is unset). Like CUDA, parsing
    stops at the first entry that names no device; MIG instances cannot be mapped to one
    node, so they allot the GPUs whole (with a warning)."""
    if visible is None:
        return Allotment(tuple(gpus))
    chosen: list[Gpu] = []
    warnings: list[str] = []
    for entry in (e.strip() for e in visible.split(",")):
        if entry.startswith("MIG-"):
            warnings.append("CUDA_VISIBLE_DEVICES names MIG instances: every GPU's node is bound")
            return Allotment(tuple(gpus), tuple(warnings))
        match = None
        if re.fullmatch(r"\d+", entry):
            index = int(entry)
            match = gpus[index] if index < len(gpus) else None
        elif entry.startswith("GPU-"):
            found = [g for g in gpus if g.uuid.startswith(entry)]
            match = found[0] if len(found) == 1 else None
        if match is None:
            break
        if match not in chosen:
            chosen.append(match)
    return Allotment(tuple(chosen), tuple(warnings))


def device_nodes(allotment: Allotment, exists=os.path.exists) -> list[str]:
    if not allotment.gpus:
        return []
    nodes = [f"/dev/nvidia{g.minor}" for g in allotment.gpus]
    return [node for node in [*nodes, *SHARED_NODES] if exists(node)]


def sys_paths(allotment: Allotment, exists=os.path.exists, realpath=os.path.realpath) -> tuple[list[str], dict[str, str]]:
    """What of /sys a CUDA process reads: CPU and NUMA topology, the driver modules, and each
    allotted GPU's own PCI device directory (not all of /sys). Returns (read-only binds,
    symlinks to recreate: link -> target)."""
    binds = [p for p in ("/sys/devices/system/cpu", "/sys/devices/system/node", "/sys/module/nvidia",
                         "/sys/module/nvidia_uvm") if exists(p)]
    links: dict[str, str] = {}
    for gpu in allotment.gpus:
        link = f"/sys/bus/pci/devices/{gpu.pci}"
        if gpu.pci and exists(link):
            target = realpath(link)
            binds.append(target)
            links[link] = target
    return binds, links
