"""Launch settings that each Triton op keeps as a module-level dataclass `CONFIG`, and the one way
to change them for a while (tests force segment lengths, benchmarks sweep tile shapes)."""

from __future__ import annotations

import contextlib
import dataclasses
import sys


@contextlib.contextmanager
def overridden_config(module_name: str, **overrides):
    """Within the block, module `module_name`'s CONFIG has these fields replaced; yields it."""
    module = sys.modules[module_name]
    saved = module.CONFIG
    module.CONFIG = dataclasses.replace(saved, **overrides)
    try:
        yield module.CONFIG
    finally:
        module.CONFIG = saved
