"""datasketch as an oracle for the TypeScript MinHash/LSH (test/core/novelty/datasketch.test.ts).

Reads JSON from stdin:
  {"minhash": [{"num_perm": 128, "seed": 1, "items": ["shingle", ...]}, ...],
   "lsh": [{"threshold": 0.85, "num_perm": 128, "weights": [0.5, 0.5]}, ...]}
and writes {"signatures": [[uint32, ...], ...], "layouts": [[bands, rows], ...]}.
Each item is fed to MinHash.update as its UTF-8 bytes; MinHash uses datasketch's defaults
(scheme, hash function) apart from num_perm and seed.
"""

import json
import sys

from datasketch import MinHash
from datasketch.lsh import _optimal_param


def signature(spec):
    m = MinHash(num_perm=spec["num_perm"], seed=spec["seed"])
    for item in spec["items"]:
        m.update(item.encode("utf-8"))
    return [int(v) for v in m.hashvalues]


def main():
    request = json.load(sys.stdin)
    json.dump(
        {
            "signatures": [signature(spec) for spec in request.get("minhash", [])],
            "layouts": [
                list(_optimal_param(spec["threshold"], spec["num_perm"], *spec["weights"]))
                for spec in request.get("lsh", [])
            ],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
