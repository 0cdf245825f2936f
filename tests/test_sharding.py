"""Rank sharding of the device loader: every rank takes its stride of the same global batches."""

import pytest
import torch
import torch.nn.functional as F

from allnc_edu.loader import (
    DeviceLoader,
    balanced_weights,
    epoch_seed,
    num_batches,
    rank_share,
    shard_drop_last,
)


def _ids(n):
    """Inputs whose single feature is the sample's own index, so batches reveal the order."""
    return torch.arange(n, dtype=torch.float32).view(n, 1)


def _images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 6, 6, generator=g), torch.randint(0, 4, (n,), generator=g)


def _old_loader_batches(x, y, batch_size, *, seed, drop_last, augment, sampling, q=1.0):
    """The single-process loader as it was before rank sharding, written out inline."""
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    if sampling == "balanced":
        w = torch.bincount(y).double()[y].pow(-q).float()
        order = torch.multinomial(w, n, replacement=True, generator=g)
    else:
        order = torch.randperm(n, generator=g)
    steps = n // batch_size if drop_last else -(-n // batch_size)
    out = []
    for i in range(steps):
        idx = order[i * batch_size : (i + 1) * batch_size]
        xb = x[idx]
        if augment:
            b = len(idx)
            dy = torch.randint(0, 9, (b,), generator=g)
            dx = torch.randint(0, 9, (b,), generator=g)
            flip = torch.rand(b, generator=g) < 0.5
            padded = F.pad(xb, (4, 4, 4, 4))
            xb = torch.stack([
                padded[j, :, dy[j] : dy[j] + 6, dx[j] : dx[j] + 6].flip(-1)
                if flip[j]
                else padded[j, :, dy[j] : dy[j] + 6, dx[j] : dx[j] + 6]
                for j in range(b)
            ])  # fmt: skip
        out.append((xb, y[idx]))
    return out


@pytest.mark.parametrize("sampling", ["instance", "balanced"])
@pytest.mark.parametrize("augment", [True, False])
def test_one_process_is_bit_identical_to_the_old_loader(sampling, augment):
    x, y = _images(37)
    kw = dict(seed=11, drop_last=True, sampling=sampling, q=0.5)
    new = DeviceLoader(x, y, 8, augment="crop_flip" if augment else None, **kw)
    old = _old_loader_batches(x, y, 8, augment=augment, **kw)
    got = list(new)
    assert len(got) == len(old) == 4
    for (xa, ya), (xb, yb) in zip(got, old, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("sampling", ["instance", "balanced"])
def test_rank_shares_interleave_to_the_single_process_batch(world_size, sampling):
    x, y = _images(29)
    kw = dict(seed=5, sampling=sampling, augment="crop_flip")
    whole = list(DeviceLoader(x, y, 10, **kw))
    ranks = [
        list(DeviceLoader(x, y, 10, rank=r, world_size=world_size, **kw)) for r in range(world_size)
    ]
    assert all(len(batches) == len(whole) == 3 for batches in ranks)
    for step, (xb, yb) in enumerate(whole):
        xs, ys = torch.empty_like(xb), torch.empty_like(yb)
        for r in range(world_size):
            xs[r::world_size], ys[r::world_size] = ranks[r][step]
        assert torch.equal(xs, xb) and torch.equal(ys, yb)


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_union_of_rank_indices_is_every_training_index_once(world_size):
    n, batch = 103, 16  # 103 is divisible by none of the world sizes
    y = torch.arange(n) % 7
    seen = []
    for r in range(world_size):
        loader = DeviceLoader(_ids(n), y, batch, seed=epoch_seed(3, 2), rank=r,
                              world_size=world_size)  # fmt: skip
        seen.append(torch.cat([xb.flatten() for xb, _ in loader]).long())
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(n))


@pytest.mark.parametrize("world_size", [2, 3])
def test_balanced_rank_shares_are_the_global_balanced_draw(world_size):
    n, batch = 101, 12
    y = torch.cat([torch.zeros(80), torch.ones(15), torch.full((6,), 2)]).long()
    kw = dict(sampling="balanced", q=1.0, seed=epoch_seed(0, 1, balanced=True))
    whole = torch.cat([xb.flatten() for xb, _ in DeviceLoader(_ids(n), y, batch, **kw)])
    shares = [
        torch.cat([xb.flatten() for xb, _ in
                   DeviceLoader(_ids(n), y, batch, rank=r, world_size=world_size, **kw)])
        for r in range(world_size)
    ]  # fmt: skip
    assert torch.equal(torch.cat(shares).sort().values, whole.sort().values)
    assert len(whole) == n  # one epoch draws n samples, with replacement
    assert torch.bincount(y[whole.long()], minlength=3).min() > 20  # class-balanced draw


def test_helpers():
    assert torch.equal(rank_share(torch.arange(7), 1, 3), torch.tensor([1, 4]))
    assert num_batches(10, 3, drop_last=False) == 4 and num_batches(10, 3, drop_last=True) == 3
    assert shard_drop_last(9, 4) and not shard_drop_last(10, 4) and not shard_drop_last(8, 4)
    # A last batch of 3 leaves rank 1 of 2 one sample; one of 4 gives each of 2 ranks two.
    assert shard_drop_last(11, 8, 2) and not shard_drop_last(12, 8, 2)
    assert epoch_seed(2, 3) == 200_009 and epoch_seed(2, 3, balanced=True) == 250_009
    w = balanced_weights(torch.tensor([0, 0, 0, 1]), q=1.0)
    assert torch.allclose(w, torch.tensor([1 / 3, 1 / 3, 1 / 3, 1.0]))


@pytest.mark.parametrize(("rank", "world_size"), [(2, 2), (-1, 2), (0, 0)])
def test_bad_rank_is_refused(rank, world_size):
    with pytest.raises(ValueError, match=r"rank|world_size"):
        DeviceLoader(_ids(4), torch.zeros(4).long(), 2, rank=rank, world_size=world_size)
