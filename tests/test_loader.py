"""Tests for allnc_edu.loader: the device-resident loader, balanced sampling, crop and flip,
the 1-D shift."""

import pytest
import torch

from allnc_edu.loader import DeviceLoader, crop_flip, random_crop_flip, shift


def _ids(n):
    """Inputs whose single feature is the sample's own index, so batches reveal the order."""
    return torch.arange(n, dtype=torch.float32).view(n, 1)


def _collect(loader):
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


# ----------------------------------------------------------------------------- instance sampling


def test_every_sample_once_per_epoch_with_shuffle():
    n = 103
    loader = DeviceLoader(_ids(n), torch.arange(n) % 7, 10, shuffle=True, seed=0)
    assert len(loader) == 11
    first, y = _collect(loader)
    second, _ = _collect(loader)
    assert torch.equal(first.flatten().sort().values, torch.arange(n, dtype=torch.float32))
    assert torch.equal(y, first.flatten().long() % 7)  # labels travel with their inputs
    assert not torch.equal(first, _ids(n))  # shuffled ...
    assert not torch.equal(first, second)  # ... differently each epoch


def test_no_shuffle_keeps_order_and_batch_sizes():
    loader = DeviceLoader(_ids(10), torch.zeros(10, dtype=torch.long), 3, shuffle=False)
    sizes = [len(xb) for xb, _ in loader]
    assert sizes == [3, 3, 3, 1] and len(loader) == 4
    assert torch.equal(_collect(loader)[0], _ids(10))


def test_drop_last():
    loader = DeviceLoader(_ids(10), torch.zeros(10, dtype=torch.long), 3, drop_last=True)
    sizes = [len(xb) for xb, _ in loader]
    assert sizes == [3, 3, 3] and len(loader) == 3


def test_same_seed_same_epochs_including_augmentation():
    x = torch.randn(40, 3, 8, 8)
    y = torch.arange(40) % 4

    def epochs(seed):
        loader = DeviceLoader(x, y, 16, augment="crop_flip", seed=seed)
        return [_collect(loader)[0] for _ in range(2)]

    a, b, c = epochs(1), epochs(1), epochs(2)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_callable_augment_is_applied():
    loader = DeviceLoader(_ids(6), torch.zeros(6, dtype=torch.long), 6, augment=lambda t: -t)
    xb, _ = next(iter(loader))
    assert (xb <= 0).all()


def test_tensors_live_on_the_device():
    loader = DeviceLoader(_ids(4), torch.zeros(4, dtype=torch.int32), 2, device="cpu")
    xb, yb = next(iter(loader))
    assert xb.device.type == "cpu" and yb.dtype == torch.long


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_loader_with_augmentation_and_balanced_sampling():
    x = torch.randn(50, 3, 32, 32)
    y = torch.arange(50) % 5
    for sampling in ("instance", "balanced"):
        loader = DeviceLoader(x, y, 16, augment="crop_flip", sampling=sampling, device="cuda")
        xb, yb = next(iter(loader))
        assert xb.is_cuda and yb.is_cuda and xb.shape == (16, 3, 32, 32)


# ----------------------------------------------------------------------------- balanced sampling


@pytest.mark.parametrize("q", [0.0, 0.5, 1.0, 2.0])
def test_balanced_sampling_class_frequencies(q):
    counts = torch.tensor([1000, 100, 10])
    y = torch.repeat_interleave(torch.arange(3), counts)
    loader = DeviceLoader(_ids(len(y)), y, 111, sampling="balanced", q=q, seed=0)
    assert len(loader) == len(DeviceLoader(_ids(len(y)), y, 111))
    draws = torch.cat([_collect(loader)[1] for _ in range(20)])
    assert len(draws) == 20 * len(y)
    # Sample weight n_{y}^-q, so class k is drawn with probability proportional to n_k^(1-q).
    p = counts.double().pow(1 - q)
    p /= p.sum()
    freq = torch.bincount(draws, minlength=3).double() / len(draws)
    tolerance = 5 * (p * (1 - p) / len(draws)).sqrt() + 1e-9
    assert ((freq - p).abs() <= tolerance).all(), (freq, p)


def test_balanced_sampling_draws_within_class_uniformly_with_replacement():
    y = torch.repeat_interleave(torch.arange(2), torch.tensor([200, 4]))
    loader = DeviceLoader(_ids(204), y, 204, sampling="balanced", q=1.0, seed=3)
    xs = torch.cat([_collect(loader)[0].flatten().long() for _ in range(10)])
    minority_hits = torch.bincount(xs, minlength=204)[200:]
    # 2040 draws, half minority: each of the 4 minority samples about 255 times.
    assert (minority_hits > 180).all() and (minority_hits < 330).all()


# ----------------------------------------------------------------------------- crop and flip


def _batch(b=6, c=3, h=8, w=8, dtype=torch.float32):
    """Distinct positive values, so every output pixel can be traced back (0 = padding)."""
    return (torch.arange(b * c * h * w) + 1).view(b, c, h, w).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8])
def test_random_crop_flip_keeps_shape_and_dtype(dtype):
    x = _batch(dtype=dtype) if dtype != torch.uint8 else torch.randint(1, 255, (6, 3, 8, 8)).byte()
    out = random_crop_flip(x, 4, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == dtype


def test_zero_offset_is_the_identity_and_flip_is_torch_flip():
    x = _batch()
    centre = torch.full((6,), 4)
    assert torch.equal(crop_flip(x, centre, centre, torch.zeros(6, dtype=torch.bool)), x)
    assert torch.equal(crop_flip(x, centre, centre, torch.ones(6, dtype=torch.bool)), x.flip(3))
    flips = torch.tensor([True, False, True, False, False, True])
    out = crop_flip(x, centre, centre, flips)
    assert torch.equal(out[flips], x[flips].flip(3)) and torch.equal(out[~flips], x[~flips])


def test_flip_only_random_setting():
    x = _batch(b=200)
    out = random_crop_flip(x, padding=0, generator=torch.Generator().manual_seed(1))
    flipped = (out == x.flip(3)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert (flipped ^ kept).all()  # each image either mirrored or untouched
    assert 60 < int(flipped.sum()) < 140


def test_corner_crop_shifts_by_the_padding():
    x = _batch(b=2, c=1)
    p = 2
    zero = torch.zeros(2, dtype=torch.long)
    no_flip = torch.zeros(2, dtype=torch.bool)
    top_left = crop_flip(x, zero, zero, no_flip, padding=p)
    assert torch.equal(top_left[..., p:, p:], x[..., :-p, :-p])
    assert (top_left[..., :p, :] == 0).all() and (top_left[..., :, :p] == 0).all()
    bottom_right = crop_flip(x, zero + 2 * p, zero + 2 * p, no_flip, padding=p)
    assert torch.equal(bottom_right[..., :-p, :-p], x[..., p:, p:])


def test_crops_never_invent_values():
    x = _batch(b=32)
    out = random_crop_flip(x, 4, torch.Generator().manual_seed(2))
    for b in range(len(x)):  # each image's pixels come from that image or the zero padding
        allowed = torch.cat([x[b].flatten(), torch.zeros(1)])
        assert torch.isin(out[b], allowed).all()
    assert (out == 0).any() and not torch.equal(out, x)


def test_channels_last_input_gives_the_same_pixels_and_keeps_its_layout():
    x = _batch(b=8)
    g = torch.Generator().manual_seed(4)
    dy, dx = torch.randint(0, 9, (8,), generator=g), torch.randint(0, 9, (8,), generator=g)
    flips = torch.rand(8, generator=g) < 0.5
    out = crop_flip(x.contiguous(memory_format=torch.channels_last), dy, dx, flips)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, crop_flip(x, dy, dx, flips))


def test_random_crop_flip_is_seeded():
    x = _batch(b=16)
    a = random_crop_flip(x, 4, torch.Generator().manual_seed(5))
    b = random_crop_flip(x, 4, torch.Generator().manual_seed(5))
    c = random_crop_flip(x, 4, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"sampling": "reversed"}, "sampling must be one of"),
        ({"q": -1.0}, "q must be"),
        ({"augment": "cutout"}, "augment must be"),
        ({"batch_size": 20, "drop_last": True}, "gives no batch"),
    ],
)
def test_loader_rejects_bad_options(kwargs, match):
    options = {"batch_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        DeviceLoader(_ids(10), torch.zeros(10, dtype=torch.long), **options)


def test_loader_rejects_bad_labels():
    with pytest.raises(ValueError, match="must match"):
        DeviceLoader(_ids(10), torch.zeros(9, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="integer class labels"):
        DeviceLoader(_ids(10), torch.zeros(10), 4)
    with pytest.raises(ValueError, match=">= 0"):
        DeviceLoader(_ids(10), -torch.ones(10, dtype=torch.long), 4)


def test_crop_flip_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        random_crop_flip(torch.zeros(4, 1, 40))
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(torch.zeros(4, 3, 8, 8), padding=-1)
    with pytest.raises(ValueError, match="shape"):
        crop_flip(torch.zeros(4, 3, 8, 8), torch.zeros(3), torch.zeros(4), torch.zeros(4))


# ----------------------------------------------------------------------------- 1-D shift


def test_shift_moves_each_signal_and_fills_with_zeros():
    x = torch.arange(1.0, 7.0).view(1, 1, 6).repeat(3, 2, 1)  # (B, C, L) = (3, 2, 6)
    out = shift(x, torch.tensor([4, 0, 8]), padding=4)
    assert torch.equal(out[0], x[0])  # offset = padding: unshifted
    assert torch.equal(out[1, :, 4:], x[1, :, :2]) and (out[1, :, :4] == 0).all()  # right by 4
    assert torch.equal(out[2, :, :2], x[2, :, 4:]) and (out[2, :, 2:] == 0).all()  # left by 4


def test_loader_shift_is_seeded_and_only_moves_signals():
    x = torch.randn(40, 1, 12)
    y = torch.arange(40) % 4

    def epoch(seed):
        return _collect(DeviceLoader(x, y, 16, augment="shift", shuffle=False, seed=seed))[0]

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    for i in range(len(x)):  # sample i is x[i] moved by some s in [-4, 4]
        moves = [shift(x[i : i + 1], torch.tensor([s]), 4) for s in range(9)]
        assert any(torch.equal(a[i : i + 1], m) for m in moves)


def test_shift_rejects_images_and_bad_offsets():
    with pytest.raises(ValueError, match=r"\(B, C, L\)"):
        shift(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="offsets"):
        shift(torch.zeros(2, 1, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="'shift'"):
        DeviceLoader(torch.zeros(4, 1, 4), torch.zeros(4, dtype=torch.long), 2, augment="roll")
