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
#
# **Every method trains on shifted signals**: each time a training signal is drawn it is moved
# by a random 0 to 4 positions left or right (zero-filled), the 1-D version of the random crop
# every CIFAR recipe uses. This matters for AllNC more than for any baseline: its re-balancing
# branch draws each of the five signals of a minority digit about ten times as often as an
# ordinary batch does, and without augmentation the network memorises them. Set
# `AUGMENT = False` to see the old recipe; the committed study below shows both.

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
AUGMENT = True  # shift training signals by up to 4 positions, every method (False: no augmentation)
RUNS = ["ce", "la", "etf-dr", "allnc", "allnc-no-hycon", "allnc-no-p2p", "allnc-no-gbbn"]
METRICS_EVERY = 4  # measure NC metrics and keep the geometry every this many epochs
SEED = 0  # the run (one of SEEDS) shown in 3D and on the epoch slider
STUDIES = {  # the committed studies (test split), one file per seed; "-2x": CE and LA at
    # AllNC's number of samples seen; "aug": signals shifted (this notebook's recipe); "60ep":
    # notebook 03's 60 epochs, weight decay 5e-3
    "step": [
        "../docs/studies/mnist1d-step-ir100-test-aug-seed0.json",
        "../docs/studies/mnist1d-step-ir100-test-aug-seed1.json",
        "../docs/studies/mnist1d-step-ir100-test-aug-seed2.json",
    ],
    "exp": [
        "../docs/studies/mnist1d-exp-ir100-test-aug-seed0.json",
        "../docs/studies/mnist1d-exp-ir100-test-aug-seed1.json",
        "../docs/studies/mnist1d-exp-ir100-test-aug-seed2.json",
    ],
    "step, 60 epochs": [
        "../docs/studies/mnist1d-step-ir100-test-aug-60ep-seed0.json",
        "../docs/studies/mnist1d-step-ir100-test-aug-60ep-seed1.json",
        "../docs/studies/mnist1d-step-ir100-test-aug-60ep-seed2.json",
    ],
    "exp, 60 epochs": [
        "../docs/studies/mnist1d-exp-ir100-test-aug-60ep-seed0.json",
        "../docs/studies/mnist1d-exp-ir100-test-aug-60ep-seed1.json",
        "../docs/studies/mnist1d-exp-ir100-test-aug-60ep-seed2.json",
    ],
    "step, no augmentation": [
        "../docs/studies/mnist1d-step-ir100-test-seed0.json",
        "../docs/studies/mnist1d-step-ir100-test-seed1.json",
        "../docs/studies/mnist1d-step-ir100-test-seed2.json",
        "../docs/studies/mnist1d-step-ir100-test-2x-seed0.json",
        "../docs/studies/mnist1d-step-ir100-test-2x-seed1.json",
        "../docs/studies/mnist1d-step-ir100-test-2x-seed2.json",
    ],
    "exp, no augmentation": [
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
    augment=AUGMENT,
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
            caption=f"MNIST-1D, step profile, IR {IMBALANCE_RATIO}, {EPOCHS} epochs, "
            f"{'shifted signals' if AUGMENT else 'no augmentation'}, test set, "
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
for name in ("allnc-no-hycon", "allnc-no-p2p", "allnc-no-gbbn"):  # the ablation (default runs)
    if name in summary:
        compare(f"AllNC vs {name}, accuracy", "allnc", name, "accuracy")
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
# - **AllNC is ahead of logit adjustment**, overall and on the minority digits (the "AllNC vs
#   LA" lines), with the shifted signals of this notebook's recipe. Set `AUGMENT = False` and
#   re-run: logit adjustment comes out ahead, as in the committed study below, which also
#   shows how much each method gains from the shifts.
# - **What each component adds** (the "AllNC vs allnc-no-..." lines, default runs only).
#   Without GBBN nothing re-balances the classes, and the minority digits are lost as under
#   CE. HyCon and P2P are about the geometry more than the accuracy: in the validation study of
#   `docs/method.md` (shifted signals, three seeds) GBBN alone was 3.1 points ahead of AllNC on
#   the step profile, within the seed spread, while on the exponential profile HyCon added 3.9
#   points. Compare NC1, MC_W and MC_H of `allnc` with those of `allnc-no-hycon` and
#   `allnc-no-p2p` in the table.
# - **The minority classifiers.** AllNC keeps MC_W close to the ETF value, where logit
#   adjustment leaves the minority classifier vectors squeezed (MC_W well above -1/(K-1)).
#
# ## The committed study: the test set, run by the study command
#
# The package's study command trained CE, LA and AllNC at this notebook's budget (20 epochs,
# weight decay 0.01, float32 on the CPU) on the step and the exponential profile, one command
# per profile and seed (0, 1 and 2), with shifted signals (this notebook's recipe) and without
# augmentation, and CE and LA once more for twice the epochs ("ce-2x", "la-2x"): AllNC's GBBN
# branch draws a class-balanced batch beside every ordinary one, so these see as many samples
# as AllNC; with shifted signals also at notebook 03's recipe (60 epochs, weight decay 5e-3,
# no CE-2x). The JSON files are committed with the command line that made them
# (`docs/studies/`) and read here rather than retrained.

# %%
committed, tables, commands = {}, [], []
for name, paths in STUDIES.items():
    found = study.read_studies(paths)
    if found is None:
        print(f"{name}: no committed study found (an installed package has no docs/)")
        continue
    committed[name], made_by = found
    seeds = committed[name]["allnc"]["seeds"]
    tables.append(study.study_html(committed[name], caption=f"{name}, test set, seeds {seeds}"))
    commands += made_by
if committed:
    caption = "AllNC minus LA and minus LA-2X (LA at AllNC's samples seen), percentage points"
    display(
        HTML(
            study.gap_html(committed, caption=caption)
            + "".join(tables)
            + "<details><summary>the commands that made these studies</summary><pre>"
            + "\n".join(commands)
            + "</pre></details>"
        )
    )
for profile in ("step", "exp"):  # what the shifts give each method
    plain = committed.get(f"{profile}, no augmentation")
    if profile in committed and plain is not None:
        gains = ", ".join(
            f"{m.upper()} {committed[profile][m]['accuracy_mean'] - plain[m]['accuracy_mean']:+.1%}"
            for m in ("la", "la-2x", "allnc")
        )
        print(f"{profile}, accuracy with shifted signals minus without: {gains}")

# %% [markdown]
# The first table gives AllNC minus LA, in points, for each study. **With shifted signals, at
# this notebook's 20 epochs ("step", "exp"), AllNC is ahead of logit adjustment** on overall and
# minority accuracy on both profiles: far ahead on the step profile, also when LA sees as many
# samples (the "allnc − la-2x" columns); on the exponential profile LA-2X comes within the seed
# spread of it (compare the ± columns of the "exp" table). **Without augmentation AllNC is below
# both**, on both profiles. The last lines (accuracy with shifted signals minus without) say
# why: the shifts give AllNC far more than they give logit adjustment. GBBN's re-balancing
# branch draws the few signals of each minority digit many times per epoch; unshifted, the
# network memorises them, shifted, every draw is a new view. Logit adjustment sees each of them
# once per epoch and has little to memorise, but it is slower: at 60 epochs ("step, 60 epochs",
# "exp, 60 epochs") it gains from the shifts too, and AllNC stays ahead of it on the step
# profile but is only level with it on the exponential one (gaps within the seed spread), where
# LA-2X is ahead of both. `docs/method.md` lists what else was tried and what each component
# adds.
#
# **Issue 9's target**, read off the tables with shifted signals: AllNC's accuracy and minority
# accuracy at least LA's is met at 20 epochs on both profiles, and at 60 epochs on the step
# profile but not on the exponential one's minority digits (by half a point, within the seed
# spread); MC_W and MC_H within 0.1 of -1/(K-1) is met in all four tables; a self-duality gap
# below CE's is not met at 20 epochs (compare the self-duality column) and is at 60 epochs only
# on the exponential profile.
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
        "augment": AUGMENT,
        "seeds": SEEDS,
        "runs": RUNS,
        "num_classes": 10,
        "etf_cosine": ETF_COSINE,
    },
}
Path(RESULTS_PATH).parent.mkdir(parents=True, exist_ok=True)
Path(RESULTS_PATH).write_text(json.dumps(results, indent=2))
print(f"wrote {RESULTS_PATH}:", ", ".join(results))
