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

* glibc gives each thread that allocates its own arena (up to 8 × cores), and each keeps the
  peak of the tensors its thread freed: after one large request the process stayed at several
  times its loaded size. Two arenas for the process (set here, before any worker thread
  starts) keep that memory where ``release()`` hands it back; the engine calls it after a long
  job (``TRIM_AFTER_S``), so the server's resident size returns near its loaded size.

Settings given in the environment (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_ARENA_MAX``, ``THP_MEM_ALLOC_ENABLE``) win over these.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD = 1 << 20
TRIM_THRESHOLD = 8 << 20
ARENAS = 2
#: after a job this long (a large input: its tensors were large), free memory goes back
TRIM_AFTER_S = 0.25
#: glibc's mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    # musl and others have no mallopt / malloc_trim: their allocator returns memory itself
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def tune() -> dict[str, bool]:
    """Apply the settings above; says which took effect (for tests and the startup log)."""
    applied = {"huge_pages": False, "malloc": False}
    if "THP_MEM_ALLOC_ENABLE" not in os.environ:
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
        applied["huge_pages"] = True
    if _LIBC is None:
        return applied
    ok = True
    for env, param, value in (
        ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("MALLOC_TRIM_THRESHOLD_", _M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ("MALLOC_ARENA_MAX", _M_ARENA_MAX, ARENAS),
    ):
        if env not in os.environ:
            ok &= _LIBC.mallopt(param, value) == 1
    applied["malloc"] = bool(ok)
    return applied


def release() -> None:
    """Return the freed heap (every arena's top and its free pages) to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
