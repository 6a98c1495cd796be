"""Datasets as uint8 arrays, cached once under $ARCHLOOP_HOME/datasets/<key>/.

Readers use numpy only (the trusted launcher must not pay for `import torch`); the
sandboxed side maps the cached .npy files and wraps them as tensors.
"""
