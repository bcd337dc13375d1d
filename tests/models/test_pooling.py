"""Pooled attention against a NumPy reference: rows still sum to 1, blocks cover every token."""

import numpy as np
import pytest
import torch

from models.pooling import block_edges, pool, pool_rows


@pytest.mark.parametrize(("T", "n"), [(10, 3), (7, 7), (5, 16), (512, 64), (2048, 256), (300, 7)])
def test_block_edges_cover_every_token_once(T, n):
    edges = block_edges(T, n)
    assert edges[0] == 0 and edges[-1] == T
    assert len(edges) == min(n, T) + 1
    sizes = np.diff(edges)
    assert (sizes >= 1).all() and sizes.max() - sizes.min() <= 1


def numpy_pool(a: np.ndarray, qe, ke) -> np.ndarray:
    out = np.zeros((*a.shape[:-2], len(qe) - 1, len(ke) - 1))
    for i in range(len(qe) - 1):
        for j in range(len(ke) - 1):
            block = a[..., qe[i] : qe[i + 1], ke[j] : ke[j + 1]]
            out[..., i, j] = block.sum(-1).mean(-1)
    return out


@pytest.mark.parametrize(("Tq", "Tk", "n"), [(9, 9, 4), (33, 17, 5), (64, 64, 64), (100, 100, 8)])
def test_pool_matches_numpy_and_rows_sum_to_one(Tq, Tk, n):
    rng = np.random.default_rng(Tq * Tk)
    a = rng.random((2, 3, Tq, Tk))
    a = np.where(np.tril(np.ones((Tq, Tk))) > 0, a, 0) if Tq == Tk else a  # causal or not
    a = a / a.sum(-1, keepdims=True)
    qe, ke = block_edges(Tq, n), block_edges(Tk, n)
    got = pool(torch.tensor(a, dtype=torch.float32), qe, ke).numpy()
    np.testing.assert_allclose(got, numpy_pool(a, qe, ke), atol=1e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    rows = pool_rows(torch.tensor(a[..., -1, :]), ke).numpy()
    np.testing.assert_allclose(rows, numpy_pool(a[..., -1:, :], [0, 1], ke)[..., 0, :], atol=1e-12)


def test_pooling_at_full_resolution_is_the_identity():
    a = torch.softmax(torch.randn(4, 12, 12), dim=-1)
    edges = block_edges(12, 256)
    torch.testing.assert_close(pool(a, edges, edges), a)
