"""Training throughput of this package's loop against a reference-style loop, in one process.

The reference trains the way the long-tail codebases do (kaidic/LDAM-DRW, GLMC): a torchvision
``DataLoader`` over PIL images with ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``,
``ToTensor`` and ``Normalize`` in worker processes, and an eager float32 model. Ours is
``train.train_step`` as ``fit`` runs it: the data on the device as one tensor, crop and flip on
whole batches there, bfloat16 autocast (where the hardware supports it: ``train.autocast_for``)
and channels_last. Both train the same ResNet-32 (16/32/64 widths, 64-d features) with the same
batch size on the same synthetic CIFAR-sized uint8 images (no download). Repetitions alternate
(reference, ours, our evaluation, ...) after one warm-up pass of each, and the ratio of the
medians is the ``speedup``. Our evaluation's images/s (``evaluate.evaluate`` over the same images as
training and test set: accuracy and NC metrics) is reported beside our training images/s.
Measured numbers, not timed tests.

The data-pipeline figure (:func:`compare_pipelines`) times the input pipeline alone, for data
sets streamed from JPEG files: decoded training images per second of ``stream.StreamLoader``
(``torchvision.io.decode_jpeg`` in the workers, uint8 batches, normalisation on the device)
against a reference loader as the ImageNet-LT codebases write it (a ``DataLoader`` whose
workers open each file with PIL and apply ``RandomResizedCrop``, ``RandomHorizontalFlip``,
``ToTensor`` and ``Normalize``), over the same files with the same workers and batch size, in
alternating passes of the same run; ``ratio`` is ours over the reference (medians).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import pick_device
from .data import DATASETS, LongTailDataset, load_dataset, long_tail_counts
from .devices import autocast_for, to_device_tensor
from .evaluate import evaluate
from .filelists import IMAGENET_MEAN, IMAGENET_STD
from .loader import DeviceLoader
from .methods import ALLNC, CE, make_method
from .models import build_backbone, resnet32_ldam
from .stream import StreamLoader
from .train import cosine_schedule, fit, train_step

#: ``--workers`` default of kaidic/LDAM-DRW and GLMC's training scripts.
REFERENCE_WORKERS = 4
#: Per-channel CIFAR-10 statistics used by the reference codebases' ``Normalize``.
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
#: CIFAR-10-LT at imbalance ratio 100 (exp profile): 12406 training images.
CIFAR10_LT_COUNTS = long_tail_counts(5000, 10, 100.0)


def synthetic_cifar(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 images (n, 32, 32, 3), HWC as CIFAR stores them, and labels (n,)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


class _PILImages(torch.utils.data.Dataset):
    """The reference codebases' dataset: one PIL image per item, transformed on the fly."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def reference_loader(
    images: np.ndarray, labels: np.ndarray, batch_size: int, workers: int, pin_memory: bool
) -> torch.utils.data.DataLoader:
    """A torchvision ``DataLoader`` with the CIFAR transforms of LDAM-DRW and GLMC."""
    import torchvision.transforms as T

    transform = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(CIFAR_MEAN, CIFAR_STD),
        ]
    )
    return torch.utils.data.DataLoader(
        _PILImages(images, labels, transform),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
    )


@contextlib.contextmanager
def _no_worker_count_warning():
    """Silence torch's warning that the reference's workers outnumber the cores (on 2 cores)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "This DataLoader will create", UserWarning)
        yield


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _timed(device: torch.device, run_pass: Callable[[], int]) -> float:
    """Images per second of one pass."""
    _sync(device)
    t0 = time.perf_counter()
    n = run_pass()
    _sync(device)
    return n / (time.perf_counter() - t0)


def _reference_pass(model: nn.Module, optimizer, loader, device: torch.device) -> int:
    model.train()
    n = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x).logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        n += len(y)
    return n


def _our_pass(method, optimizer, scheduler, loader: DeviceLoader, autocast) -> int:
    method.train()
    n = 0
    for xb, yb in loader:
        train_step(method, optimizer, scheduler, xb, yb, progress=0.0, epoch=0,
                   balanced_batch=None, autocast=autocast)  # fmt: skip
        n += len(yb)
    return n


def _resnet32_ce(device: torch.device, channels_last: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    method = make_method(CE.name, resnet32_ldam(), 10, CIFAR10_LT_COUNTS)
    fmt = torch.channels_last if channels_last else torch.preserve_format
    return method.to(device, memory_format=fmt)


def _sgd(model: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-3)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads, {os.cpu_count()} cores)"
    return device.type


def _normalised(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W), normalised like the reference."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std).contiguous()


def compare_loops(
    device: torch.device,
    *,
    batch_size: int,
    images: int,
    reps: int,
    ref_workers: int,
    amp: bool = True,
    channels_last: bool = True,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Interleaved img/s of the reference loop and ours on ``images`` synthetic images."""
    pics, labels = synthetic_cifar(images, seed)
    ref_model = _resnet32_ce(device, False, seed)
    ref_opt = _sgd(ref_model)
    with _no_worker_count_warning():
        loader = reference_loader(pics, labels, batch_size, ref_workers, device.type == "cuda")

    ours = _resnet32_ce(device, channels_last, seed)
    ours_opt = _sgd(ours)
    ours_sched = cosine_schedule(ours_opt, total_steps=10**9)
    x = to_device_tensor(_normalised(pics), device, channels_last)
    y = torch.from_numpy(labels).to(device)
    dev_loader = DeviceLoader(x, y, batch_size, augment="crop_flip", seed=seed)
    autocast = autocast_for(device, amp)

    def ref_pass():
        with _no_worker_count_warning():
            return _reference_pass(ref_model, ref_opt, loader, device)

    def our_pass():
        return _our_pass(ours, ours_opt, ours_sched, dev_loader, autocast)

    eval_data = _eval_dataset(pics)

    def eval_pass():
        evaluate(ours, eval_data, train_x=x, test_x=x, amp=amp)
        return 2 * len(x)  # the images pass once as the training set, once as the test set

    _timed(device, ref_pass)  # warm-up passes (worker start-up, kernel selection), excluded
    _timed(device, our_pass)
    _timed(device, eval_pass)
    ref_runs, our_runs, eval_runs = [], [], []
    for r in range(reps):
        ref_runs.append(_timed(device, ref_pass))
        our_runs.append(_timed(device, our_pass))
        eval_runs.append(_timed(device, eval_pass))
        log(
            f"  rep {r + 1}/{reps}: reference {ref_runs[-1]:7.0f} img/s, "
            f"ours {our_runs[-1]:7.0f} img/s training, {eval_runs[-1]:7.0f} img/s evaluation"
        )
    ref, our = statistics.median(ref_runs), statistics.median(our_runs)
    return {
        "reference": {
            "img_per_s": ref,
            "runs": ref_runs,
            "loader": f"torchvision DataLoader, PIL transforms, {ref_workers} workers",
            "precision": "float32",
            "channels_last": False,
        },
        "ours": {
            "img_per_s": our,
            "runs": our_runs,
            "loader": "DeviceLoader, on-device crop+flip",
            "precision": _precision(autocast),
            "channels_last": channels_last,
            "eval_img_per_s": statistics.median(eval_runs),
            "eval_runs": eval_runs,
            "eval": "evaluate.evaluate: accuracy and NC metrics (float32 features), test set "
            "under the training autocast",
        },
        "speedup": our / ref,
        "speedup_best": max(our_runs) / max(ref_runs),  # best-of-reps: robust on a shared CPU
    }


def _precision(autocast: contextlib.AbstractContextManager) -> str:
    """What ``train.autocast_for`` chose: bfloat16 only where the hardware supports it."""
    return "bfloat16 autocast" if isinstance(autocast, torch.autocast) else "float32"


def _eval_dataset(pics: np.ndarray) -> LongTailDataset:
    """The synthetic images as both training and test set, labels cycling through 10 classes
    (every class present when there are at least 10 images), for timing ``evaluate``."""
    n = len(pics)
    x, y = _normalised(pics), torch.arange(n) % 10
    return LongTailDataset(
        name="synthetic-cifar10", train_x=x, train_y=y, test_x=x, test_y=y,
        counts=torch.bincount(y, minlength=10).tolist(), num_classes=10,
        class_names=[str(k) for k in range(10)], input_shape=(3, 32, 32), imbalance_ratio=1.0,
        profile="exp",
    )  # fmt: skip


def cifar10_lt_run_time(
    device: torch.device, *, epochs: int = 200, batch_size: int = 64, seed: int = 0
) -> dict[str, float]:
    """Time of a full CIFAR-10-LT-sized CE run (12406 training, 10000 test images, ResNet-32
    16/32/64), extrapolated from one steady-state epoch after a warm-up epoch, plus one
    evaluation pass (train and test accuracy and streamed NC metrics), and the run's total
    with an evaluation every epoch and at the recipe's cadence (``data.DATASETS``)."""
    n = sum(CIFAR10_LT_COUNTS)
    pics, _ = synthetic_cifar(n + 10_000, seed)
    labels = torch.repeat_interleave(torch.arange(10), torch.tensor(CIFAR10_LT_COUNTS))
    data = LongTailDataset(
        name="synthetic-cifar10-lt", train_x=_normalised(pics[:n]), train_y=labels,
        test_x=_normalised(pics[n:]), test_y=torch.arange(10).repeat(1000),
        counts=CIFAR10_LT_COUNTS, num_classes=10, class_names=[str(k) for k in range(10)],
        input_shape=(3, 32, 32), imbalance_ratio=100.0, profile="exp",
    )  # fmt: skip
    method = _resnet32_ce(device, True, seed)
    opt = _sgd(method)
    sched = cosine_schedule(opt, total_steps=10**9)
    x = to_device_tensor(data.train_x, device, True)
    loader = DeviceLoader(x, data.train_y.to(device), batch_size, augment="crop_flip", seed=seed)
    autocast = autocast_for(device, True)
    _timed(device, lambda: _our_pass(method, opt, sched, loader, autocast))
    img_per_s = _timed(device, lambda: _our_pass(method, opt, sched, loader, autocast))
    test_x = to_device_tensor(data.test_x, device, True)
    evaluate(method, data, train_x=x, test_x=test_x)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    evaluate(method, data, train_x=x, test_x=test_x)
    _sync(device)
    eval_s = time.perf_counter() - t0
    train_s = epochs * n / img_per_s
    every = int(DATASETS["cifar10-lt"].recipe["metrics_every"])
    evaluations = len(set(range(every, epochs + 1, every)) | {epochs})
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "img_per_s": img_per_s,
        "train_s": train_s,
        "eval_pass_s": eval_s,
        "eval_img_per_s": (n + len(data.test_y)) / eval_s,
        "total_s_eval_every_epoch": train_s + epochs * eval_s,
        "metrics_every": every,
        "total_s_default_cadence": train_s + evaluations * eval_s,
    }


def mnist1d_allnc_throughput(device: torch.device, *, epochs: int = 3, seed: int = 0) -> dict:
    """Training samples per second of AllNC on long-tailed MNIST-1D (IR 100) with the default
    1-D CNN, as ``fit`` runs it (the first epoch, a warm-up, is left out when epochs > 1).
    Every sample drawn counts, the class-balanced batch of each GBBN step included."""
    data = load_dataset("mnist1d", imbalance_ratio=100.0, seed=seed)
    torch.manual_seed(seed)
    method = make_method(ALLNC.name, build_backbone("cnn1d", data.input_shape), 10, data.counts)
    result = fit(method, data, epochs=epochs, device=device, seed=seed, progress=False)
    rates = [h.samples_per_s for h in result.history[1 if epochs > 1 else 0 :]]
    return {
        "samples_per_s": statistics.median(rates),
        "epochs": epochs,
        "train_size": len(data.train_y),
    }


class _PILFiles(torch.utils.data.Dataset):
    """The reference's dataset over image files: PIL opens and converts each, then ``transform``."""

    def __init__(self, root: str, files: list[str], labels: list[int], transform: Callable):
        self.root, self.files, self.labels, self.transform = root, files, labels, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(os.path.join(self.root, self.files[i])) as image:
            return self.transform(image.convert("RGB")), self.labels[i]


def pil_file_loader(
    root: str, files: list[str], labels: list[int], *, batch_size: int, image_size: int,
    workers: int, pin_memory: bool = False,
) -> torch.utils.data.DataLoader:  # fmt: skip
    """The reference pipeline: PIL decoding and the ImageNet training transforms in workers."""
    import torchvision.transforms as T

    transform = T.Compose([
        T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])  # fmt: skip
    return torch.utils.data.DataLoader(
        _PILFiles(root, files, labels, transform), batch_size=batch_size, shuffle=True,
        num_workers=workers, pin_memory=pin_memory, persistent_workers=workers > 0,
    )  # fmt: skip


def image_folder_files(root: str | os.PathLike, images: int, seed: int = 0):
    """``images`` files of an image folder ``root/<class>/*.jpg`` (or ``root/train/<class>``, as
    the CIFAR-10 JPEG copy), a seeded choice over all of them: (folder, paths relative to it,
    labels)."""
    base = Path(root).expanduser()
    if (base / "train").is_dir():
        base = base / "train"
    classes = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    found = [(f"{c.name}/{f.name}", k) for k, c in enumerate(classes) for f in sorted(c.iterdir())
             if f.suffix.lower() in (".jpg", ".jpeg")]  # fmt: skip
    if len(found) < images:
        raise ValueError(f"{images} JPEG images wanted, {len(found)} found under {base}/<class>/")
    pick = np.random.default_rng(seed).choice(len(found), images, replace=False)
    return str(base), [found[i][0] for i in pick], [found[i][1] for i in pick]


def synthetic_jpegs(folder: str | os.PathLike, images: int, seed: int = 0) -> None:
    """Write ``images`` synthetic 32x32 JPEGs into ``folder/<label>/`` (CIFAR-sized; smooth
    random colour fields, 4x4 noise upsampled, so they compress like photographs, not noise)."""
    from torchvision.io import encode_jpeg, write_file

    gen = torch.Generator().manual_seed(seed)
    for i in range(images):
        small = torch.randint(0, 256, (1, 3, 4, 4), generator=gen).float()
        image = F.interpolate(small, size=(32, 32), mode="bilinear").round().to(torch.uint8)[0]
        out = Path(folder) / str(i % 10)
        out.mkdir(parents=True, exist_ok=True)
        write_file(str(out / f"{i:05d}.jpg"), encode_jpeg(image, quality=90))


def compare_pipelines(
    device: torch.device,
    root: str,
    files: list[str],
    labels: list[int],
    *,
    batch_size: int,
    image_size: int,
    workers: int,
    reps: int,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Interleaved decoded training images/s of the PIL reference loader and StreamLoader over
    the same files (each pass: every image once, batches on ``device`` ready for a model)."""
    y = torch.tensor(labels)
    with _no_worker_count_warning():
        ref = pil_file_loader(root, files, labels, batch_size=batch_size, image_size=image_size,
                              workers=workers, pin_memory=device.type == "cuda")  # fmt: skip

    def ref_pass() -> int:
        n = 0
        with _no_worker_count_warning():
            for x, yb in ref:
                x.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                n += len(yb)
        return n

    def our_pass(epoch: int) -> int:
        loader = StreamLoader(
            files, y, batch_size, train=True, image_size=image_size, root=root,
            mean=IMAGENET_MEAN, std=IMAGENET_STD, seed=seed * 100_003 + epoch, device=device,
            workers=workers,
        )  # fmt: skip
        return sum(len(yb) for _, yb in loader)

    _timed(device, ref_pass)  # warm-up passes (worker start-up, file cache), excluded
    _timed(device, lambda: our_pass(0))
    ref_runs, our_runs = [], []
    for r in range(reps):
        ref_runs.append(_timed(device, ref_pass))
        our_runs.append(_timed(device, lambda r=r: our_pass(r + 1)))
        log(f"  rep {r + 1}/{reps}: PIL reference {ref_runs[-1]:7.0f} img/s, "
            f"StreamLoader {our_runs[-1]:7.0f} img/s")  # fmt: skip
    ref_med, our_med = statistics.median(ref_runs), statistics.median(our_runs)
    return {
        "images": len(files),
        "image_size": image_size,
        "batch_size": batch_size,
        "workers": workers,
        "reference": {"img_per_s": ref_med, "runs": ref_runs,
                      "loader": "DataLoader, PIL.Image.open, torchvision transforms "
                      "(RandomResizedCrop, flip, ToTensor, Normalize) in workers"},
        "ours": {"img_per_s": our_med, "runs": our_runs,
                 "loader": "StreamLoader: decode_jpeg + resized crop + flip in workers, uint8 "
                 "batches, normalisation on the device"},
        "ratio": our_med / ref_med,
    }  # fmt: skip


def run_benchmark(
    *,
    device: str | torch.device = "auto",
    batch_size: int = 128,
    images: int | None = None,
    reps: int | None = None,
    ref_workers: int = REFERENCE_WORKERS,
    quick: bool = False,
    mnist1d: bool = True,
    pipeline: bool = True,
    pipeline_root: str | os.PathLike | None = None,
    pipeline_images: int | None = None,
    image_size: int = 32,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark and return a JSON-ready dict with top-level ``speedup`` and ``device``.

    Defaults: ``images`` = 1024 on a CPU (12416 on a GPU), ``reps`` = 5; ``quick``
    shrinks everything to a smoke test (2 batches, 1 repetition, 1 MNIST-1D epoch). On CUDA it
    also extrapolates a 200-epoch CIFAR-10-LT run (:func:`cifar10_lt_run_time`).
    """
    dev = pick_device(device)
    gpu = dev.type == "cuda"
    if images is None:
        images = 2 * batch_size if quick else (12416 if gpu else 1024)
    if reps is None:
        reps = 1 if quick else 5
    if min(batch_size, images, reps) < 1 or images < max(batch_size, 10) or ref_workers < 0:
        raise ValueError(
            "need batch_size >= 1, images >= batch_size and >= 10 (one per class), reps >= 1 "
            "and ref_workers >= 0, got "
            f"{batch_size}, {images}, {reps}, {ref_workers}"
        )
    name = _device_name(dev)
    log(f"device: {name}; ResNet-32 (16/32/64), batch {batch_size}, {images} synthetic images")
    result: dict[str, Any] = {"device": name, "device_type": dev.type, "torch": torch.__version__,
                              "batch_size": batch_size, "images": images, "reps": reps}  # fmt: skip
    result.update(compare_loops(dev, batch_size=batch_size, images=images, reps=reps,
                                ref_workers=ref_workers, seed=seed, log=log))  # fmt: skip
    ref, ours = result["reference"], result["ours"]
    log(f"reference ({ref['loader']}, float32): {ref['img_per_s']:8.0f} img/s")
    log(f"ours      ({ours['loader']}, {ours['precision']}): {ours['img_per_s']:8.0f} img/s")
    log(f"ours, evaluation (accuracy + NC metrics):  {ours['eval_img_per_s']:8.0f} img/s")
    log(f"speedup: {result['speedup']:.2f}x (medians), {result['speedup_best']:.2f}x (best runs)")
    if gpu and not quick:
        run = cifar10_lt_run_time(dev, seed=seed)
        result["cifar10_lt_200_epochs"] = run
        log(
            f"200-epoch CIFAR-10-LT CE run (batch {run['batch_size']}): {run['train_s']:.0f} s "
            f"training, {run['eval_pass_s']:.2f} s per evaluation pass "
            f"({run['total_s_eval_every_epoch']:.0f} s in all evaluating every epoch, "
            f"{run['total_s_default_cadence']:.0f} s every {run['metrics_every']} epochs)"
        )
    if pipeline:
        result["data_pipeline"] = _pipeline(
            dev, pipeline_root, pipeline_images or (2 * batch_size if quick else 2048),
            batch_size=batch_size, image_size=image_size, workers=ref_workers, reps=reps,
            seed=seed, log=log,
        )  # fmt: skip
    if mnist1d:
        m = mnist1d_allnc_throughput(dev, epochs=1 if quick else 3, seed=seed)
        result["mnist1d_allnc"] = m
        log(
            f"MNIST-1D AllNC training ({m['train_size']} samples): "
            f"{m['samples_per_s']:.0f} samples/s"
        )
    return result


def _pipeline(dev, root, images: int, *, log: Callable[[str], None], seed: int, **kw) -> dict:
    """:func:`compare_pipelines` on ``images`` JPEGs of the image folder ``root``, or on
    synthetic JPEGs written to a temporary folder when ``root`` is None; logs the figure."""
    with tempfile.TemporaryDirectory() as tmp:
        if root is None:
            synthetic_jpegs(tmp, images, seed)
        folder, files, labels = image_folder_files(root or tmp, images, seed)
        source = f"{folder} ({images} files)" if root is not None else f"{images} synthetic JPEGs"
        log(f"data pipeline: {source}, image size {kw['image_size']}, {kw['workers']} workers")
        out = compare_pipelines(dev, folder, files, labels, log=log, seed=seed, **kw)
    out["source"] = source
    log(f"data pipeline: PIL reference {out['reference']['img_per_s']:8.0f} img/s, StreamLoader "
        f"{out['ours']['img_per_s']:8.0f} img/s, ratio {out['ratio']:.2f}x")  # fmt: skip
    return out
