# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/allnc-edu/allnc-edu/blob/main/notebooks/04_allnc_restoration.ipynb)
#
# # 04 · AllNC: restoring neural collapse all around
#
# Notebook 03 trained a CNN on long-tailed MNIST-1D and found the minority class means squeezed,
# under cross-entropy and under a fixed ETF classifier alike. AllNC (Zhang et al. 2024) attacks
# all three aspects of neural collapse at once: individual activations onto their class means
# (HyCon, NC1), class means and classifier vectors together into one simplex ETF (P2P, NC2 and
# NC3), with a schedule that moves from feature learning to classifier learning (GBBN). We train
# it on the same data, take it apart component by component, compare it with logit adjustment,
# and watch its geometry form over training. (AllNC here is a documented reconstruction of the
# paper's method, not the authors' code: see `docs/method.md`.)
#
# **The defaults used here were chosen on a validation split** held out of the training pool,
# never on the test set (`docs/method.md`, "Choosing the defaults"): the re-balancing branch
# uses logit adjustment by its batches' own class distribution with q = 0.5, the GBBN exponent
# is gamma = 0.5, the weights are lambda_h = 0.1 and lambda_p = 0.1, and GBBN's two batches go
# through BatchNorm in separate passes. Every number below says how many training samples the
# run saw: a GBBN step draws two batches, so AllNC sees twice the samples of CE in the same
# epochs.

# %%
# Setup. On Colab, install allnc_edu from its repository; Colab's own torch is kept.
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "allnc-edu @ git+https://github.com/allnc-edu/allnc-edu"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

import allnc_edu

allnc_edu.show_versions()
DEVICE = allnc_edu.pick_device()
print("GPU in use:", DEVICE.type == "cuda")

# %% tags=["parameters"]
SMOKE = False
RESULTS_PATH = "results/04_allnc_restoration.json"
IMBALANCE_RATIO = 100  # n_max / n_min of the step profile (as in notebook 03)
N_MAX = 500  # training signals in each majority class
SEEDS = [0, 1]  # every run is repeated for each seed; tables show mean ± std
EPOCHS = 20  # training epochs of every run (notebook 03 used 60; see the note below)
WEIGHT_DECAY = 0.01  # SGD weight decay (a larger one reaches the collapse regime sooner)
RUNS = ["ce", "la", "etf-dr", "allnc", "allnc-no-hycon", "allnc-no-p2p", "allnc-no-gbbn"]
METRICS_EVERY = 4  # measure NC metrics and keep the geometry every this many epochs
SEED = 0  # the run (one of SEEDS) shown in 3D and on the epoch slider
STUDIES = {  # the committed studies (test split), one file per seed; "-2x": CE and LA at
    # AllNC's number of samples seen
    "step": [
        "../docs/studies/mnist1d-step-ir100-test-seed0.json",
        "../docs/studies/mnist1d-step-ir100-test-seed1.json",
        "../docs/studies/mnist1d-step-ir100-test-seed2.json",
        "../docs/studies/mnist1d-step-ir100-test-2x-seed0.json",
        "../docs/studies/mnist1d-step-ir100-test-2x-seed1.json",
        "../docs/studies/mnist1d-step-ir100-test-2x-seed2.json",
    ],
    "exp": [
        "../docs/studies/mnist1d-exp-ir100-test-seed0.json",
        "../docs/studies/mnist1d-exp-ir100-test-seed1.json",
        "../docs/studies/mnist1d-exp-ir100-test-seed2.json",
        "../docs/studies/mnist1d-exp-ir100-test-2x-seed0.json",
        "../docs/studies/mnist1d-exp-ir100-test-2x-seed1.json",
        "../docs/studies/mnist1d-exp-ir100-test-2x-seed2.json",
    ],
}

# %%
if SMOKE:  # fewer runs (the CI check); the same budget per run
    RUNS = ["ce", "la", "allnc"]
    METRICS_EVERY = 10

# %%
import json
from pathlib import Path

from IPython.display import HTML, display

from allnc_edu import plots, study
from allnc_edu.allnc import AllNCConfig
from allnc_edu.data import load_dataset
from allnc_edu.methods import VARIANTS

ETF_COSINE = -1 / (10 - 1)
data = load_dataset("mnist1d", imbalance_ratio=IMBALANCE_RATIO, profile="step", n_max=N_MAX)
print("training counts per class (seed 0):", data.counts)
print("AllNC defaults:", AllNCConfig())

# %% [markdown]
# ## The runs
#
# Plain cross-entropy; logit adjustment (Menon et al. 2021), a strong one-line long-tail
# baseline that adds the log class prior to the logits during training; the fixed ETF
# classifier with dot regression (the classifier-only fix of notebook 03); full AllNC; and AllNC
# with one component removed at a time, which shows what each adds on top of the others. Each
# run is repeated for every seed in `SEEDS` (each seed draws its own training subset and
# initialisation). This cell trains all of them: minutes on a CPU.

# %%
for name in RUNS:
    print(f"{name:15s} {VARIANTS[name].description}")
trained = {}
live = study.run_study(
    dataset="mnist1d",
    profile="step",
    imbalance_ratio=IMBALANCE_RATIO,
    n_max=N_MAX,
    methods=RUNS,
    seeds=SEEDS,
    epochs=EPOCHS,
    weight_decay=WEIGHT_DECAY,
    metrics_every=METRICS_EVERY,
    record_geometry=True,
    device=DEVICE,
    amp=DEVICE.type == "cuda",  # bfloat16 autocast slows a CPU down
    results=trained,
)
summary = live["summary"]
display(
    HTML(
        study.study_html(
            summary,
            caption=f"MNIST-1D, step profile, IR {IMBALANCE_RATIO}, {EPOCHS} epochs, test set, "
            f"mean ± std over seeds {SEEDS}",
        )
    )
)

# %% [markdown]
# ## What the run shows
#
# Each line below compares two runs by their mean over the seeds; the verdict is computed from
# the numbers printed beside it, so it always says what this run found.


# %%
def compare(label, a, b, key, higher="higher"):
    """Print a one-line comparison of two runs' mean ``key`` with its verdict."""
    x, y = summary[a][f"{key}_mean"], summary[b][f"{key}_mean"]
    verdict = f"{a} {higher}" if x > y else f"{b} {higher}"
    print(f"{label}: {a} {x:.1%} vs {b} {y:.1%} ({verdict})")


compare("AllNC vs LA, accuracy", "allnc", "la", "accuracy")
compare("AllNC vs LA, minority accuracy", "allnc", "la", "minority_accuracy")
compare("AllNC vs CE, minority accuracy", "allnc", "ce", "minority_accuracy")
print(f"ETF value -1/(K-1) = {ETF_COSINE:+.3f}")
for name in RUNS:
    row = summary[name]
    print(
        f"{name:15s} MC_W {row['mc_weights_mean']:+.3f} (off the ETF by "
        f"{row['mc_weights_mean'] - ETF_COSINE:+.3f}), MC_H {row['mc_means_mean']:+.3f}, "
        f"self-duality gap {row['self_duality_mean']:.3f}, samples seen {row['samples_seen']:,}"
    )

# %% [markdown]
# - **AllNC recovers minority accuracy over cross-entropy** (the "AllNC vs CE" line): the five
#   minority digits, which CE almost never predicts, are recognised far more often.
# - **Logit adjustment is still ahead on accuracy** in this small setting: compare the
#   "AllNC vs LA" lines. With five training signals per minority digit, correcting the decision
#   rule for the class prior matters more than a well-shaped geometry; the study in
#   `docs/method.md` searched the reconstruction's choices for a way past LA and did not find
#   one on MNIST-1D.
# - **The minority classifiers.** AllNC keeps MC_W close to the ETF value, where logit
#   adjustment leaves the minority classifier vectors squeezed (MC_W well above -1/(K-1)).
#   Compare `allnc-no-p2p` (default runs only) with `allnc`: in the validation study of
#   `docs/method.md`, GBBN without P2P left the minority classifiers squeezed (MC_W +0.609)
#   and P2P held them apart.
#
# ## The committed study: the test set, run by the study command
#
# The package's study command trained CE, LA and AllNC at this notebook's budget (20 epochs,
# weight decay 0.01, float32 on the CPU) on the step and the exponential profile, one command
# per profile and seed (0, 1 and 2), and CE and LA once more for twice the epochs ("ce-2x",
# "la-2x"): AllNC's GBBN branch draws a class-balanced batch beside every ordinary one, so
# these see as many samples as AllNC. The JSON files are committed with the command line that
# made them (`docs/studies/`) and read here rather than retrained. (Issue 9 asks for the
# comparison at notebook 03's recipe too, 60 epochs; `docs/results.md` reports it, and the gap
# between AllNC and logit adjustment is wider there.)

# %%
committed = {}
for profile, paths in STUDIES.items():
    found = [Path(p) for p in paths if Path(p).exists()]
    if not found:
        print(f"{profile}: no committed study found (an installed package has no docs/)")
        continue
    records = [json.loads(p.read_text(encoding="utf-8")) for p in found]
    print("\n".join(r["command"] for r in records))
    committed[profile] = study.summarize([run for r in records for run in r["runs"]])
    print(study.study_table(committed[profile]))
    rows = committed[profile]
    for rival in ("la", "la-2x"):
        for key in ("accuracy", "minority_accuracy"):
            gap = rows["allnc"][f"{key}_mean"] - rows[rival][f"{key}_mean"]
            print(f"{profile}: AllNC vs {rival.upper()}, {key.replace('_', ' ')}: {gap:+.1%}")
    print()

# %% [markdown]
# AllNC stays below logit adjustment on overall and minority accuracy (the "AllNC vs LA" lines
# print AllNC minus LA), and further below it when LA sees as many samples as AllNC ("AllNC vs
# LA-2X"): the target of issue 9, AllNC at least as accurate as LA, is not met on MNIST-1D.
# `docs/method.md` lists what was tried.
#
# ## The geometry, in 3D
#
# Diamonds: classifier rows; circles: centred class means; minority classes drawn thick. Left
# to right: cross-entropy, logit adjustment, AllNC (seed 0).

# %%
plots.simplex_views({n: trained[n, SEED] for n in ("ce", "la", "allnc")}).show()

# %% [markdown]
# ## Watching the geometry form
#
# Drag the slider through the epochs of the AllNC run: the class means and the classifier rows
# at each recorded epoch (each frame is projected onto its own three main directions, so watch
# the angles between the arrows rather than the orientation of the picture). Below it, all the
# metrics over training.

# %%
allnc_run = trained["allnc", SEED]
plots.epoch_slider(allnc_run, title="AllNC").show()
plots.metric_curves(allnc_run.evaluated, title=f"AllNC, IR {IMBALANCE_RATIO}").show()

# %% [markdown]
# The key numbers of this run, for the tests:

# %%
results = {
    "summary": summary,
    "runs": live["runs"],
    "committed": committed,
    "settings": {
        "imbalance_ratio": IMBALANCE_RATIO,
        "n_max": N_MAX,
        "epochs": EPOCHS,
        "weight_decay": WEIGHT_DECAY,
        "seeds": SEEDS,
        "runs": RUNS,
        "num_classes": 10,
        "etf_cosine": ETF_COSINE,
    },
}
Path(RESULTS_PATH).parent.mkdir(parents=True, exist_ok=True)
Path(RESULTS_PATH).write_text(json.dumps(results, indent=2))
print(f"wrote {RESULTS_PATH}:", ", ".join(results))
