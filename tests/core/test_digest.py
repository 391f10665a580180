"""core.digest hashes whole files, across its 1 MiB reading blocks."""

import hashlib

import numpy as np

from core.digest import file_sha256


def test_file_sha256_matches_hashlib_across_blocks(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (5 << 19) + 7, dtype=np.uint8).tobytes()  # 2.5 MiB + 7 B
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # the last byte, in the last block
    assert file_sha256(path) != hashlib.sha256(data).hexdigest()
