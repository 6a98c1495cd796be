"""A candidate program that looks for the test labels everywhere it can reach.

Its __init__ walks the sandbox's whole filesystem from `/`, reads every readable regular
file (mapped, so a 1 GB library costs no copy), gunzips/unzips archives, and reports as
JSON on stdout: files and bytes read, paths of interest it saw, and every finding — a
file named like a label file or the synthetic generator, an IDX label file or an integer
.npy of the test set's length, the generator's source, the machine secret, or the test labels'
opening sequence in any of the encodings they are stored in (uint8 as in IDX, int64/int32
as in .npy, pickled ints as in CIFAR's python batches, text). /proc, /sys and /dev are
listed, not read (their files are endless or the kernel's). Then it raises, so the job
ends as an `instantiate` failure carrying the report in its logs.

A positive control keeps the test honest: the training labels (which the sandbox may see)
are searched the same way and must be found in /data/train_y.npy.
"""

import json

import numpy as np

from .corpus import SIMPLE

REPORT_MARK = "WALK-REPORT:"
HEAD = 24  # labels per needle: 10^24 sequences, no accidental match


def encodings(labels: np.ndarray) -> dict[str, str]:
    """Hex needles for a label sequence as it could be stored."""
    head = [int(v) for v in labels[:HEAD]]
    out = {
        "uint8": bytes(head), "int64": np.asarray(head, "<i8").tobytes(), "int32": np.asarray(head, "<i4").tobytes(),
        "pickle": b"".join(b"K" + bytes([v]) for v in head), "text-comma": ",".join(map(str, head)).encode(),
        "text-space": ", ".join(map(str, head)).encode(), "digits": "".join(map(str, head)).encode(),
    }
    return {name: value.hex() for name, value in out.items()}


def needles(test_labels: np.ndarray, secret: int) -> dict[str, str]:
    found = {f"test-labels/{k}": v for k, v in encodings(test_labels).items()}
    found["generator-source"] = b"def _prototypes".hex()
    found["palette-seed"] = b"PALETTE_SEED".hex()
    found["secret-hex"] = f"{secret:032x}".encode().hex()
    found["secret-int"] = str(secret).encode().hex()
    return found


BODY = r'''
import bz2, gzip, json, lzma, mmap, os, re, stat, zipfile
NEEDLES = {name: bytes.fromhex(value) for name, value in %(needles)r.items()}
CONTROL = {name: bytes.fromhex(value) for name, value in %(control)r.items()}
TEST_SIZE = %(test_size)d
IDX_LABELS = b"\x00\x00\x08\x01" + TEST_SIZE.to_bytes(4, "big")
NAMES = re.compile(r"(^|/)(t10k-labels[^/]*|train-labels[^/]*|test_y\.npy|test_batch(\.bin)?|\.machine-secret)$|cifar-10-batches|share/datasets|archloop/runner/datasets")
INTEREST = ("/data/train_x.npy", "/data/train_y.npy", "/data/test_x.npy", "/opt/archloop/archloop/runner/inner.py")  # test_x: must not be there
report = {"files": 0, "bytes": 0, "dirs": 0, "errors": 0, "seen": [], "findings": [], "control": []}

def scan(path, data, depth=0):
    for name, needle in NEEDLES.items():
        if data.find(needle) >= 0:
            report["findings"].append([path, name])
    for name, needle in CONTROL.items():
        if data.find(needle) >= 0:
            report["control"].append([path, name])
    head = bytes(data[:256])
    if head.startswith(IDX_LABELS):
        report["findings"].append([path, "idx-label-file-of-test-length"])
    if head.startswith(b"\x93NUMPY") and f"({TEST_SIZE},)".encode() in head and re.search(rb"'descr': '[<>|=][iu]\d'", head):
        report["findings"].append([path, "integer-npy-of-test-length"])
    if depth > 1:
        return
    try:
        if head.startswith(b"\x1f\x8b"):
            scan(path + "!gunzip", gzip.decompress(bytes(data))[: 256 << 20], depth + 1)
        elif head.startswith(b"BZh"):
            scan(path + "!bunzip2", bz2.decompress(bytes(data))[: 256 << 20], depth + 1)
        elif head.startswith(b"\xfd7zXZ"):
            scan(path + "!unxz", lzma.decompress(bytes(data))[: 256 << 20], depth + 1)
        elif head.startswith(b"PK\x03\x04") and len(data) < (512 << 20):
            import io
            with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
                for info in archive.infolist()[:20000]:
                    if info.file_size < (256 << 20):
                        scan(path + "!" + info.filename, archive.read(info), depth + 1)
    except Exception:
        report["errors"] += 1

for root, dirs, files in os.walk("/"):
    report["dirs"] += 1
    if root in ("/proc", "/sys", "/dev"):
        dirs[:] = []
        continue
    for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
        path = os.path.join(root, name)
        if NAMES.search(path):
            report["findings"].append([path, "name"])
        if path in INTEREST:
            report["seen"].append(path)
        try:
            info = os.stat(path, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
                continue
            with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                report["files"] += 1
                report["bytes"] += info.st_size
                scan(path, data)
        except (OSError, ValueError):
            report["errors"] += 1
report["findings"] = report["findings"][:50]
print("%(mark)s" + json.dumps(report), flush=True)
raise RuntimeError("walk finished")
'''


def walker_program(test_labels: np.ndarray, train_labels: np.ndarray, secret: int) -> str:
    """SIMPLE with the walk in its __init__ (indented into the method)."""
    control = {f"train-labels/{k}": v for k, v in encodings(train_labels).items() if k in ("int64",)}
    body = BODY % {"needles": needles(test_labels, secret), "control": control, "test_size": len(test_labels),
                   "mark": REPORT_MARK}
    indented = "".join(f"        {line}\n" if line.strip() else "\n" for line in body.strip("\n").splitlines())
    return SIMPLE.replace("        self.device = device\n", "        self.device = device\n" + indented, 1)


def report_of(result: dict) -> dict:
    stdout = result["logs"]["stdout"]
    assert REPORT_MARK in stdout, (result["failure"], result["logs"]["stderr"][-2000:])
    return json.loads(stdout.split(REPORT_MARK, 1)[1].splitlines()[0])
