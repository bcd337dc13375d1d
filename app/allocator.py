"""How this process allocates memory, set once before torch allocates anything (app/__init__.py).

A server runs the same shapes of tensors request after request. With the C library's and
PyTorch's defaults each request's large buffers are fresh pages from the kernel, and on a
virtual machine a page fault costs ~2 µs: a 126-token answer of encoder-mini took ~530 faults
(~1 ms, a sixth of its forward pass), a GPT-2-small forward pass at 1024 tokens 650 000 (a
quarter of its time). Measured in bench/RESULTS.md ("Where a request's time goes").

* glibc: blocks under 1 MB come from (and go back to) the heap instead of a new mmap each
  time, and the heap keeps up to 8 MB free at its top instead of giving it back after every
  request (126 tokens: ~530 -> ~200 faults). Larger blocks are still mapped and unmapped on
  their own, so a long input's memory goes back when its request ends: with a 4 MB threshold
  faults fell to ~130, but a server that had answered GPT-2-small's shape at 1024 tokens kept
  ~140 MB more than with glibc's defaults (1 MB: ~45 MB more).
* PyTorch: tensors of 2 MB and more in transparent huge pages (``THP_MEM_ALLOC_ENABLE``, read
  at torch's first allocation): 512 times fewer faults (GPT-2-small shape, 1024 tokens: the
  forward pass 2.83 -> 2.10 s, another head 167 -> 120 ms).

Settings given in the environment (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
``THP_MEM_ALLOC_ENABLE``) win over these.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD = 1 << 20
TRIM_THRESHOLD = 8 << 20
#: glibc's mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune() -> dict[str, bool]:
    """Apply the settings above; says which took effect (for tests and the startup log)."""
    applied = {"huge_pages": False, "malloc": False}
    if "THP_MEM_ALLOC_ENABLE" not in os.environ:
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
        applied["huge_pages"] = True
    if not sys.platform.startswith("linux"):
        return applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return applied
    ok = True
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        ok &= mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        ok &= mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    applied["malloc"] = bool(ok)
    return applied
