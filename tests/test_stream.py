"""The streaming loader: decoded, normalised, channels_last batches on the device; the same
epoch for the same seed whatever the workers; rank shares that add up to the single-process
batch; class-balanced frequencies; an evaluation pass that covers every image once."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _filelist_tree import COLOURS, write_imagenet_lt
from torchvision.io import encode_jpeg, write_file

from allnc_edu.filelists import IMAGENET_MEAN, IMAGENET_STD, load_filelist
from allnc_edu.stream import (
    CROP_SCALE,
    StreamLoader,
    centre_box,
    crop_box,
    decode,
    default_workers,
    eval_loader,
    resized_crop,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet_lt")
    write_imagenet_lt(root)
    return load_filelist("imagenet-lt", root, image_size=32)


def _train_loader(data, **kw) -> StreamLoader:
    options = dict(train=True, image_size=32, root=data.root, mean=data.mean, std=data.std,
                   workers=0, seed=5)  # fmt: skip
    return StreamLoader(data.train_files, data.train_y, 16, **{**options, **kw})


def test_evaluation_batches_are_normalised_channels_last_in_list_order(data) -> None:
    loader = eval_loader(data, "test", batch_size=4, workers=0)
    batches = list(loader)
    assert len(loader) == len(batches) == 3  # 9 test images, batches of 4
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.shape == (9, 3, 32, 32) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert y.dtype == torch.long and torch.equal(y, data.test_y)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    for i, path in enumerate(data.test_files):
        k, j = int(data.test_y[i]), int(path.rsplit("_", 1)[1].split(".")[0])
        colour = (torch.tensor(COLOURS[k]) + 20 * j).clamp(0, 255) / 255
        want = ((colour - mean) / std).view(3, 1, 1)
        assert (x[i] - want).abs().max() < 3 / 255 / std.min()  # solid colours, JPEG-rounded


def test_the_same_seed_replays_the_same_epoch_with_any_number_of_workers(data) -> None:
    first = list(_train_loader(data))
    again = list(_train_loader(data, workers=1))
    other = list(_train_loader(data, seed=6))
    assert len(first) == len(again) == 9  # 136 images, batches of 16
    for (xa, ya), (xb, yb) in zip(first, again, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(first[0][1], other[0][1])
    assert sorted(torch.cat([y for _, y in first]).tolist()) == sorted(data.train_y.tolist())


def test_the_ranks_shares_of_a_step_are_the_single_process_batch(data) -> None:
    for world, sampling in ((2, "instance"), (3, "instance"), (2, "balanced")):
        kw = dict(drop_last=True, sampling=sampling, q=0.5)
        whole = list(_train_loader(data, **kw))
        shares = [list(_train_loader(data, rank=r, world_size=world, **kw))
                  for r in range(world)]  # fmt: skip
        for i, (x, y) in enumerate(whole):
            for r in range(world):
                assert len(shares[r]) == len(whole) == 8
                xr, yr = shares[r][i]
                assert torch.equal(xr, x[r::world]) and torch.equal(yr, y[r::world])


def test_evaluation_shards_cover_every_image_once(data) -> None:
    world = 4  # 136 training images, batches of 10: the last global batch holds 6
    seen = [torch.cat([y for _, y in eval_loader(data, "train", batch_size=10, rank=r,
                                                  world_size=world, workers=0)])
            for r in range(world)]  # fmt: skip
    assert sum(len(s) for s in seen) == 136
    merged = torch.empty(136, dtype=torch.long)
    for r, s in enumerate(seen):
        order = torch.arange(130).view(13, 10)[:, r::world].flatten()
        tail = torch.arange(130, 136)[r::world]
        merged[torch.cat([order, tail])] = s
    assert torch.equal(merged, data.train_y)


def test_class_balanced_sampling_draws_classes_as_n_k_to_the_one_minus_q() -> None:
    counts = torch.tensor([6000, 1500, 300])
    labels = torch.repeat_interleave(torch.arange(3), counts)
    files = [f"never/read_{i}.jpg" for i in range(len(labels))]  # built, not iterated
    for q in (0.0, 1.0, 2.0):
        loader = StreamLoader(files, labels, 64, train=True, image_size=32, root="/nowhere",
                              mean=IMAGENET_MEAN, std=IMAGENET_STD, sampling="balanced", q=q,
                              seed=1, workers=0)  # fmt: skip
        freq = torch.bincount(labels[loader.order], minlength=3).double() / len(labels)
        want = counts.double() ** (1 - q) / (counts.double() ** (1 - q)).sum()
        assert (freq - want).abs().max() < 0.015, (q, freq, want)
    plain = StreamLoader(files, labels, 64, train=False, image_size=32, root="/nowhere",
                         mean=IMAGENET_MEAN, std=IMAGENET_STD, seed=1, workers=0)  # fmt: skip
    assert torch.equal(plain.order.sort().values, torch.arange(len(labels)))


def test_crop_boxes_stay_inside_the_image_and_cover_the_drawn_area() -> None:
    gen = torch.Generator().manual_seed(0)
    for h, w in ((40, 48), (375, 500), (32, 32)):
        for params in torch.rand(500, 5, generator=gen, dtype=torch.float64).tolist():
            top, left, ch, cw = crop_box(h, w, params)
            assert 0 <= top <= h - ch and 0 <= left <= w - cw and ch >= 1 and cw >= 1
            assert ch * cw <= h * w
    # The whole area (1920 pixels) at ratio 1 is 44 x 44, clipped to the height: 40 x 44.
    assert crop_box(40, 48, [1 - 1e-12, 0.5, 0.0, 0.99]) == (0, 4, 40, 44)
    _, _, ch, cw = crop_box(400, 400, [0.0, 0.5, 0.5, 0.5])
    assert abs(ch * cw / 400**2 - CROP_SCALE[0]) < 0.01


def test_grey_and_mislabelled_files_decode_to_rgb(tmp_path) -> None:
    grey = torch.full((1, 10, 12), 90, dtype=torch.uint8)
    write_file(str(tmp_path / "g.jpg"), encode_jpeg(grey))
    assert decode(str(tmp_path / "g.jpg")).shape == (3, 10, 12)
    from torchvision.io import encode_png

    write_file(str(tmp_path / "p.JPEG"), encode_png(grey.expand(3, 10, 12).contiguous()))
    image = decode(str(tmp_path / "p.JPEG"))
    assert image.shape == (3, 10, 12) and int(image.max()) == 90


def test_bad_settings_are_refused_in_one_line(data) -> None:
    with pytest.raises(ValueError, match="rank"):
        _train_loader(data, rank=2, world_size=2)
    with pytest.raises(ValueError, match="sampling"):
        _train_loader(data, sampling="uniform")
    with pytest.raises(ValueError, match="as many labels as files"):
        StreamLoader(data.train_files[:3], data.train_y, 2, train=True, image_size=32,
                     root=data.root, mean=data.mean, std=data.std)  # fmt: skip


def test_resizing_matches_torchvision_within_one_grey_level() -> None:
    from torchvision.transforms.v2 import functional as TF

    gen = torch.Generator().manual_seed(0)
    small = torch.randint(0, 256, (1, 3, 6, 8), generator=gen).float()
    image = F.interpolate(small, size=(60, 80), mode="bilinear").round().to(torch.uint8)[0]
    ours = resized_crop(image, (5, 7, 40, 50), 24)
    want = TF.resized_crop(image, 5, 7, 40, 50, [24, 24], antialias=True)
    assert ours.dtype == torch.uint8 and ours.shape == (3, 24, 24)
    assert (ours.int() - want.int()).abs().max() <= 1
    assert centre_box(600, 800, 224) == (37, 137, 525, 525)  # 224 of 256: 0.875 x 600
    assert centre_box(60, 80, 24) == (3, 13, 53, 53)  # 24 of round(24 / 0.875) = 27
    # On a ramp of 2 grey levels per row (1 per column) the boxes differ by the rounding of the
    # offsets: CenterCrop rounds 1.5 resized rows up (3.3 source rows), centre_box floors 3.5.
    ramp = (2 * torch.arange(60).view(60, 1) + torch.arange(80)).to(torch.uint8).expand(3, 60, 80)
    two_step = TF.center_crop(TF.resize(ramp, [27], antialias=True), [24, 24])
    one_step = resized_crop(ramp, centre_box(60, 80, 24), 24)
    assert (one_step.float() - two_step.float()).abs().max() <= 6


def test_default_workers_share_the_cores_between_a_nodes_processes(monkeypatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _: set(range(32)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_workers() == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert default_workers() == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "64")
    assert default_workers() == 0
