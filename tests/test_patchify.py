"""Tests for sora_lite.patchify: spacetime patches and 3D rotary position tables."""

import re

import numpy as np
import pytest

from sora_lite import patchify as P


@pytest.mark.parametrize("thw,patch", [((1, 4, 4), (1, 2, 2)), ((3, 4, 6), (1, 2, 2)), ((4, 6, 2), (2, 3, 1)),
                                       ((2, 2, 2), (2, 2, 2)), ((5, 3, 7), (1, 1, 1))])
def test_patchify_round_trip(thw, patch):
    c = 3
    z = np.random.default_rng(0).normal(size=(2, *thw, c)).astype(np.float32)
    grid = P.grid_shape(thw, patch)
    tokens = P.patchify(z, patch)
    assert grid == tuple(n // p for n, p in zip(thw, patch))
    assert tokens.shape == (2, int(np.prod(grid)), int(np.prod(patch)) * c)
    np.testing.assert_array_equal(P.unpatchify(tokens, grid, patch), z)


def test_patch_order_is_time_major():
    """Token (i, j, k) of the grid is number (i * h' + j) * w' + k and holds that block, (p q r c)-ordered."""
    patch, thw = (2, 2, 3), (4, 6, 6)
    z = np.random.default_rng(1).normal(size=(1, *thw, 2)).astype(np.float32)
    gt, gh, gw = P.grid_shape(thw, patch)
    tokens = np.asarray(P.patchify(z, patch))
    for i, j, k in [(0, 0, 0), (1, 2, 1), (0, 1, 0), (1, 0, 1)]:
        block = z[0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, 3 * k : 3 * k + 3]  # [pt, ph, pw, c]
        np.testing.assert_array_equal(tokens[0, (i * gh + j) * gw + k], block.reshape(-1))


@pytest.mark.parametrize("thw,patch", [((3, 4, 4), (2, 2, 2)), ((1, 5, 4), (1, 2, 2)), ((1, 4, 3), (1, 2, 2))])
def test_grid_shape_error(thw, patch):
    with pytest.raises(ValueError, match=re.escape(f"must be divisible by the patch {patch}")) as e:
        P.grid_shape(thw, patch)
    assert "\n" not in str(e.value) and str(thw) in str(e.value)


def test_rope_split():
    for dh in (8, 16, 32, 64, 72, 128):
        t, h, w = P.rope_split(dh)
        assert t + h + w == dh and h == w and t % 2 == h % 2 == 0 and min(t, h) > 0
    with pytest.raises(ValueError, match="head_dim must be even"):
        P.rope_split(33)


def _rotate(vec, grid, head_dim):
    """The same vector at every token of `grid`, rotated: [N, head_dim]."""
    cos, sin = P.rope_tables(grid, head_dim)
    n = int(np.prod(grid))
    x = np.broadcast_to(vec, (1, n, 1, head_dim)).astype(np.float32)
    return np.asarray(P.apply_rope(x, cos, sin))[0, :, 0]


def test_rope_tables_shape_and_origin_is_identity():
    cos, sin = P.rope_tables((2, 3, 4), 32)
    assert cos.shape == sin.shape == (24, 16)
    x = np.random.default_rng(2).normal(size=(1, 24, 2, 32)).astype(np.float32)
    out = np.asarray(P.apply_rope(x, cos, sin))
    np.testing.assert_allclose(out[:, 0], x[:, 0], rtol=1e-6)  # position (0, 0, 0): no rotation
    assert not np.allclose(out[:, 1], x[:, 1])
    # Norms are preserved for every token and head.
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_rope_scores_depend_only_on_relative_position(axis):
    head_dim, n = 32, 7
    grid = [1, 1, 1]
    grid[axis] = n
    rng = np.random.default_rng(axis)
    q, k = _rotate(rng.normal(size=head_dim), grid, head_dim), _rotate(rng.normal(size=head_dim), grid, head_dim)
    scores = q @ k.T  # [n, n]: query at position a, key at position b
    for offset in range(-n + 1, n):
        diag = np.diagonal(scores, offset)
        np.testing.assert_allclose(diag, diag[0], rtol=1e-4, atol=1e-4)
    assert not np.isclose(scores[0, 0], scores[0, 1], atol=1e-3)  # but it does depend on the offset


def test_rope_relative_in_3d():
    grid, head_dim = (3, 4, 5), 32
    rng = np.random.default_rng(7)
    q, k = _rotate(rng.normal(size=head_dim), grid, head_dim), _rotate(rng.normal(size=head_dim), grid, head_dim)
    idx = lambda t, h, w: (t * grid[1] + h) * grid[2] + w  # noqa: E731
    base = q[idx(0, 1, 0)] @ k[idx(1, 3, 2)]
    shifted = q[idx(1, 0, 2)] @ k[idx(2, 2, 4)]  # same offset (1, 2, 2), moved by (1, -1, 2)
    np.testing.assert_allclose(base, shifted, rtol=1e-4, atol=1e-4)
    other = q[idx(0, 1, 0)] @ k[idx(1, 2, 3)]  # offset (1, 1, 3): each axis has its own band
    assert not np.isclose(base, other, atol=1e-3)


def test_canvas_features_depend_on_the_fraction_of_the_canvas_not_its_size():
    f3, f5, f8 = (np.asarray(P.canvas_features((1, n, n), octaves=3)) for n in (3, 5, 8))
    assert f3.shape == (9, 18) and f8.shape == (64, 18)
    np.testing.assert_allclose(f3[4], f5[12], atol=1e-6)  # the centre of either canvas
    assert not np.allclose(f3[0], f5[0])  # the corner token covers a larger share of the smaller one
    assert len({tuple(row) for row in f8.round(5)}) == 64  # every place of a canvas is told apart
    # Tokens time-major like patchify, columns per axis (t, h, w) a sin and a cos: tokens 0 and 1 share
    # the first frame and differ in width; token 2 is the second frame.
    ft = np.asarray(P.canvas_features((2, 1, 2), octaves=1))  # [4, 6]
    np.testing.assert_allclose(ft[0, :4], ft[1, :4])
    assert not np.allclose(ft[0, 4:], ft[1, 4:]) and not np.allclose(ft[0, :2], ft[2, :2])
    np.testing.assert_allclose(ft[0, 2:], ft[2, 2:])
