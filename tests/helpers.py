"""Small helpers the tests share: seeded generators and a free local port (benchmarks borrow the port).

The tiny random pipelines the tests build come from the package (``ddit.presets.build_tiny_pipeline``): the
``ddit save-tiny`` command and the smoke-run training config use them too."""

import socket

import torch


def generator(seed: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
