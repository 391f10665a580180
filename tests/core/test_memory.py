"""Freed memory handed back to the operating system between windows (core/memory.py)."""

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

# 1 600 blocks of 100 KB (below glibc's mmap threshold, so they live in the heap), all freed but
# the last, which pins the heap's top: glibc keeps the 160 MB below it until malloc_trim.
PROBE = textwrap.dedent("""
    import ctypes, ctypes.util
    from core.memory import release_freed_memory

    def rss_mb():
        with open('/proc/self/status') as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith('VmRSS'))

    libc = ctypes.CDLL(ctypes.util.find_library('c'))
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(100_000) for _ in range(1600)]
    for block in blocks:
        ctypes.memset(block, 1, 100_000)
    for block in blocks[:-1]:
        libc.free(block)
    kept = rss_mb()
    released = release_freed_memory()
    print(kept, rss_mb(), released)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_heap_pages_go_back_to_the_system():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    kept, after, released = done.stdout.split()
    assert released == "True"
    assert int(kept) - int(after) > 120, (kept, after)  # of the 160 MB freed
