"""Test images only for evaluation: a train job gets them after its `learn` has returned.

They are not in the sandbox's /data. When the runner inside has finished `learn`, it says
so (its progress event of stage `eval`) and reads them from stdin; the trusted side, which
has kept stdin open since the request, writes them then (`Handover.reply`) and from that
moment gives the job a short window to send its predictions: the larger of `floor_s` and
`share` × the time the job ran before it asked.

The event is the sandbox's word, so a program can write it early and read stdin itself: it
then has the test images during its own training, but only for that window, which also
has to hold the whole evaluation. (What the window allows is measured in bench/RESULTS.md;
honest evaluations need a fraction of it.)

Wire format on stdin, after the request line: `N C H W\\n`, then N·C·H·W bytes (uint8).
"""

import math
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

HEADER_LIMIT = 64
MAX_IMAGES_BYTES = 1 << 34


def payload(images: np.ndarray) -> bytes:
    n, c, h, w = images.shape
    return f"{n} {c} {h} {w}\n".encode() + np.ascontiguousarray(images, dtype=np.uint8).tobytes()


def receive(stream: BinaryIO) -> np.ndarray:
    """Inside the sandbox: blocks until the trusted side has sent the test images."""
    header = stream.readline(HEADER_LIMIT).split()
    shape = tuple(int(value) for value in header)
    size = math.prod(shape)
    if len(shape) != 4 or not 0 < size <= MAX_IMAGES_BYTES:
        raise ValueError(f"malformed test-image header {header!r}")
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"the test images did not arrive ({len(data)} of {size} bytes)")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


@dataclass
class Handover:
    """The trusted side of one train job: answers its first `eval` event with the images."""

    images: np.ndarray
    floor_s: float
    share: float
    sent: bool = False

    def reply(self, stage: str, elapsed_s: float) -> tuple[bytes, float] | None:
        """(what to write to the job's stdin, the seconds it has left) the first time it asks."""
        if self.sent or stage != "eval":
            return None
        self.sent = True
        return payload(self.images), max(self.floor_s, self.share * elapsed_s)
