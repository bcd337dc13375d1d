"""Every test process runs torch on one intra-op thread.

The models under test are tiny: torch's thread pool costs more than it gains, and on this
busy 2-core machine far more. Measured at load average 6: tests/models/test_rnn.py,
test_generate.py and test_block.py take 5.4 s at 1 thread against 22.5 s at torch's default
of 2; tests/quality/test_rnn.py 3.4 s against 20.3 s. The in-process app's engine sets the
same once it starts (cores / ATTNVIZ_MAX_CONCURRENCY); this makes it hold from the first
test, in any subset and in any pytest-xdist worker.
"""

import torch

torch.set_num_threads(1)
