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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/allnc-edu/allnc-edu/blob/main/notebooks/03_class_mean_squeezing.ipynb)
#
# # 03 · Class-mean squeezing in a trained network
#
# Notebook 02 saw minority collapse in a model of the last layer. Here we train a real network,
# a small 1-D CNN on long-tailed MNIST-1D, with cross-entropy, and compare it with the same
# network trained on balanced data. We measure the squeeze twice: among the minority classifier
# vectors (MC_W) and among the minority class means (MC_H). Then we try the classifier-only
# fix, a fixed simplex-ETF classifier trained with the dot-regression loss (Yang et al. 2022):
# its classifier is a perfect ETF by construction, yet the minority class means stay squeezed
# and no longer line up with their classifier vectors. That is the observation AllNC starts
# from (notebook 04 applies the cure).

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
SEED = 0
RESULTS_PATH = "results/03_class_mean_squeezing.json"
IMBALANCE_RATIO = 100  # n_max / n_min of the step profile
N_MAX = 500  # training signals in each majority class
EPOCHS = 60  # training epochs of every run
WEIGHT_DECAY = 0.005  # SGD weight decay
SLIDER_RATIOS = [1, 10, 30, 100]  # imbalance ratios of the slider; 1 is the balanced run
METRICS_EVERY = 1  # measure NC metrics and keep the geometry every this many epochs

# %%
if SMOKE:  # shorter training; a larger weight decay reaches the same regime sooner
    EPOCHS = 20
    WEIGHT_DECAY = 0.01
    SLIDER_RATIOS = [1]
    METRICS_EVERY = 5

# %%
import json
from pathlib import Path

from IPython.display import HTML, display

from allnc_edu import experiments, plots, report
from allnc_edu.groups import minority_classes, shot_groups

RATIOS = sorted({1, *SLIDER_RATIOS, IMBALANCE_RATIO})
train = {
    "epochs": EPOCHS,
    "weight_decay": WEIGHT_DECAY,
    "metrics_every": METRICS_EVERY,
    "seed": SEED,
    "device": DEVICE,
}

# %% [markdown]
# ## The data
#
# MNIST-1D (Greydanus 2020) is a 1-D stand-in for MNIST: ten classes of 40-sample signals, small
# enough to train on a CPU in seconds, hard enough that the network has to learn features. We
# use a *step* profile: the first five digits keep `N_MAX` training signals each, the last five
# get `N_MAX / IMBALANCE_RATIO`. Those five classes with the fewest training samples are the
# **minority** classes throughout this notebook. The test set stays balanced (100 per digit).
# The same data, loaded at every ratio of the slider below, differ only in how many signals of
# each class are kept.

# %%
datasets = experiments.load_ratios("mnist1d", RATIOS, profile="step", n_max=N_MAX, seed=SEED)
data = datasets[IMBALANCE_RATIO]
K = data.num_classes
ETF_COSINE = -1 / (K - 1)
print("training counts per class:", data.counts)
print("minority classes (fewest training samples):", minority_classes(data.counts))
print("shot groups:", shot_groups(data.counts))

# %% [markdown]
# ## Cross-entropy: balanced against long-tailed
#
# We train the same CNN (same initialisation, same SGD recipe: momentum 0.9, a cosine learning
# rate, weight decay `WEIGHT_DECAY`) with plain cross-entropy at every ratio of `RATIOS`; ratio 1
# is the balanced run. At the end of each epoch the training loop measures the test accuracy and
# the neural-collapse metrics of the training features, and keeps the class means and the
# classifier rows for the pictures.

# %%
ce_runs = {
    ratio: experiments.run_method("ce", datasets[ratio], record_geometry=True, **train)
    for ratio in RATIOS
}
balanced, ce = ce_runs[1], ce_runs[IMBALANCE_RATIO]
display(
    HTML(
        report.results_table(
            {"balanced (IR 1)": balanced, f"cross-entropy (IR {IMBALANCE_RATIO})": ce},
            caption="Cross-entropy on MNIST-1D",
        )
    )
)

# %%
print(f"ETF value -1/(K-1) = {ETF_COSINE:+.3f}")
for name, run in (("balanced", balanced), ("long-tailed", ce)):
    print(
        f"{name:12s}: MC_W {run.mc_weights:+.3f}, MC_H {run.mc_means:+.3f}, "
        f"minority accuracy {run.minority_accuracy:.1%}, overall {run.accuracy:.1%}"
    )

# %% [markdown]
# Read the two rows. On balanced data the minority classes are classes like any other: their
# classifier vectors and their centred class means keep pairwise cosines near the ETF value
# $-1/(K-1)$ (MC_W and MC_H printed above, within 0.1 of it), and the test accuracy on them is
# as high as on the other five (within a few points). With the long tail, the five minority
# classifier vectors squeeze together (MC_W rises well above the balanced value), and so do the
# five minority class means (MC_H rises above the balanced value too): the network has learnt
# features that barely tell the minority digits apart, and the minority test accuracy collapses
# (printed above, far below the balanced run's).
#
# The 3D views show the same: arrows ending in a diamond are classifier rows, arrows ending in
# a circle are centred class means; the minority classes are thick with open tips. Ten classes
# need more than three dimensions, so each 3D picture shows the arrows from their three widest
# directions (the subtitle says how much of their squared length that keeps): use it for the
# gist (on the right, the thick arrows bunch together) and the cosine maps under it for the true
# angles. White there is the ETF value $-1/(K-1)$; red cells are pairs squeezed closer than
# that: where the minority classes squeeze, their block (classes 5 to 9) turns red.

# %%
plots.simplex_views(
    {"balanced (IR 1)": balanced, f"cross-entropy (IR {IMBALANCE_RATIO})": ce}
).show()

# %% [markdown]
# ## The classifier-only fix: a fixed ETF classifier
#
# If the classifier squeezes, why not forbid it? Yang et al. (2022) fix the classifier to a
# simplex ETF before training and train only the features, with the *dot-regression* loss that
# pulls each normalised feature onto its class's classifier vector. By construction MC_W is
# exactly $-1/(K-1)$. What happens to the class means?

# %%
etf_dr = experiments.run_method("etf-dr", data, record_geometry=True, **train)
runs = {
    "balanced (IR 1)": balanced,
    f"cross-entropy (IR {IMBALANCE_RATIO})": ce,
    f"ETF + dot regression (IR {IMBALANCE_RATIO})": etf_dr,
}
display(HTML(report.results_table(runs, caption="The classifier-only fix")))
for name, run in (("cross-entropy", ce), ("ETF + DR", etf_dr)):
    print(
        f"{name:13s}: MC_W {run.mc_weights:+.4f}, MC_H {run.mc_means:+.3f}, "
        f"self-duality gap {run.self_duality:.3f}, NC1 {run.nc1:.3f}, "
        f"minority accuracy {run.minority_accuracy:.1%}"
    )
print(f"balanced     : self-duality gap {balanced.self_duality:.3f}, NC1 {balanced.nc1:.3f}")

# %% [markdown]
# The classifier is a perfect ETF (MC_W equals $-1/(K-1)$ to four decimals), but the minority
# class means are squeezed: MC_H, printed above, lies far above the ETF value (by more than
# 0.3). The fixed classifier vectors of the minority classes point in well-separated
# directions, while the features of those classes do not follow them: the self-duality gap
# (NC3, the distance between the normalised classifier and the normalised centred means, 0 when
# they coincide) is larger than for cross-entropy and for the balanced run. Fixing the
# classifier has only moved the problem into the features, and the minority accuracy stays
# about as low as with cross-entropy (within a few points), far below the balanced run's.
#
# NC1, the collapse of each feature onto its class mean, does not reveal the problem on its own:
# the fixed ETF's NC1 is *lower* than cross-entropy's (printed above), because dot regression
# pulls every feature straight onto a fixed target. The features do collapse, onto class means
# that are squeezed. NC1 measures the spread of the features relative to the spread of the
# means; it says nothing about whether the means are where they should be. The side-by-side
# views: in the right-hand picture, the thick diamonds sit on the grey ETF while the thick
# circles bunch together; in its cosine map the classifier triangle (above the diagonal) is
# white and the means triangle (below) has a red minority block.

# %%
plots.simplex_views(runs).show()

# %% [markdown]
# ## How the squeeze grows with imbalance
#
# Drag the slider: each step is a cross-entropy run at one imbalance ratio of `RATIOS`
# (precomputed above, so the slider is instant and works in any viewer). The curve below it
# collects MC_W and MC_H of the same runs against the ratio (log axis).

# %%
plots.runs_slider({f"{r:g}": ce_runs[r] for r in RATIOS}, label="IR ", title="Cross-entropy").show()
plots.minority_collapse_sweep_figure(
    RATIOS,
    [ce_runs[r].mc_weights for r in RATIOS],
    [ce_runs[r].mc_means for r in RATIOS],
    num_classes=K,
    title="Cross-entropy on MNIST-1D: minority squeeze against imbalance",
).show()
for r in RATIOS:
    run = ce_runs[r]
    print(
        f"IR {r:5g}: MC_W {run.mc_weights:+.3f}, MC_H {run.mc_means:+.3f}, "
        f"minority accuracy {run.minority_accuracy:.1%}"
    )

# %% [markdown]
# From the balanced run to the largest ratio both cosines rise (printed above) and the minority
# accuracy falls. (Between neighbouring ratios the curve need not be monotone: each point is a
# single training run.)
#
# ## Over training
#
# The metrics of every epoch, for the long-tailed cross-entropy run and for the fixed ETF
# classifier: NC1 (log scale), the distances of the Gram matrices to an ETF, the self-duality
# gap, and MC_W and MC_H with the ETF value dotted. For the fixed ETF, MC_W is a flat line at
# the ETF value from the first epoch, while MC_H finds its own level.

# %%
plots.metric_curves(ce.evaluated, title=f"Cross-entropy, IR {IMBALANCE_RATIO}").show()
plots.metric_curves(
    etf_dr.evaluated, title=f"Fixed ETF + dot regression, IR {IMBALANCE_RATIO}"
).show()

# %% [markdown]
# The key numbers of this run, for the tests:

# %%
results = {
    **experiments.key_numbers({"balanced": balanced, "ce": ce, "etf_dr": etf_dr}),
    "etf_dr_mc_weights_history": [r.mc_weights for r in etf_dr.evaluated],
    "sweep": {
        "ratios": RATIOS,
        "mc_weights": [ce_runs[r].mc_weights for r in RATIOS],
        "mc_means": [ce_runs[r].mc_means for r in RATIOS],
        "minority_accuracy": [ce_runs[r].minority_accuracy for r in RATIOS],
    },
    "settings": {
        "imbalance_ratio": IMBALANCE_RATIO,
        "n_max": N_MAX,
        "epochs": EPOCHS,
        "weight_decay": WEIGHT_DECAY,
        "counts": data.counts,
        "minority": minority_classes(data.counts),
        "num_classes": K,
        "etf_cosine": ETF_COSINE,
    },
}
Path(RESULTS_PATH).parent.mkdir(parents=True, exist_ok=True)
Path(RESULTS_PATH).write_text(json.dumps(results, indent=2))
print(f"wrote {RESULTS_PATH}:", ", ".join(results))
