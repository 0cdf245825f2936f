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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/allnc-edu/allnc-edu/blob/main/notebooks/02_minority_collapse.ipynb)
#
# # 02 · Minority collapse: what imbalance does to the simplex
#
# Notebook 01 showed the unconstrained-features model (UFM) settling into a simplex ETF on
# balanced data. Here we take half of the classes and give them fewer and fewer samples. The
# classifier vectors of these *minority* classes squeeze together until they point the same way
# (*minority collapse*, Fang et al. 2021), and their class means follow. We measure it across
# imbalance ratios, compare it with the SELI geometry that the model approaches as weight decay
# vanishes, and show that fixing the classifier to an ETF repairs the classifier but not the
# class means: the observation that motivates AllNC, whose P2P term repairs both.

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
RESULTS_PATH = "results/02_minority_collapse.json"
NUM_CLASSES = 4  # K; the last K - K//2 classes are the minority
N_MAX = 1000  # samples in each majority class
RATIOS = [1, 3, 10, 30, 100, 300, 1000]  # imbalance ratios n_max / n_min of the sweep
WEIGHT_DECAY = 0.005  # lambda_W and lambda_H (both)
SELI_RATIO = 100  # imbalance ratio of the SELI comparison
SELI_WEIGHT_DECAYS = [0.01, 0.003, 0.001, 0.0003]  # decreasing weight decays
P2P_LAMBDA = 1.0  # weight of AllNC's P2P term
THRESHOLD_RATIOS = [1, 10, 100, 150, 175, 190, 210, 250, 1000]  # finer near complete collapse
THRESHOLD_N_MAX = 100_000  # majority count there, so n_max / IR is not rounded to another ratio
THRESHOLD_STEPS = 20_000  # gradient descent slows down near the threshold

# %%
if SMOKE:
    RATIOS = [1, 30, 1000]
    SELI_WEIGHT_DECAYS = [0.01, 0.003, 0.001]
    THRESHOLD_RATIOS = [1, 150, 190, 210, 1000]

# %%
import json
from pathlib import Path

from allnc_edu import geometry, metrics, plots, ufm, widgets
from allnc_edu.data import long_tail_counts
from allnc_edu.fmt import fixed
from allnc_edu.groups import minority_classes

K, LARGEST = NUM_CLASSES, max(RATIOS)
ETF_COSINE = -1 / (K - 1)
decay = {"weight_decay_w": WEIGHT_DECAY, "weight_decay_h": WEIGHT_DECAY, "seed": SEED}

# %% [markdown]
# ## The squeeze at a glance
#
# We use a *step* profile: the first K//2 classes get `N_MAX` samples each, the other
# K - K//2 classes (the minority) get `N_MAX / IR`, IR being the imbalance ratio. Two numbers
# summarise what happens to the minority (they were defined in notebook 01): **MC_W**, the
# average pairwise cosine of the minority classifier rows, and **MC_H**, the same for their
# centred class means. Both equal $-1/(K-1)$ at an ETF and reach 1 when the minority vectors all
# point the same way.

# %%
views = {}
for ratio in (1, LARGEST):
    counts = long_tail_counts(N_MAX, K, ratio, profile="step")
    views[ratio] = ufm.simulate(counts, **decay)
    final = views[ratio].final
    w_ratio, h_ratio = ufm.minority_norm_ratios(final)
    print(
        f"IR {ratio:5g}, counts {counts}: MC_W {final['mc_weights']:+.3f}, "
        f"MC_H {final['mc_means']:+.3f}, minority/majority norms: classifier {w_ratio:.2f}, "
        f"means {h_ratio:.2f}"
    )
print(f"ETF value -1/(K-1) = {ETF_COSINE:.3f}")

# %% [markdown]
# In the two figures, arrows ending in a diamond are classifier rows and arrows ending in a
# circle centred class means; the minority classes are drawn thick with open tips, and the grey
# dashed lines are the simplex ETF nearest to the classifier. At IR 1 every arrow sits on the
# grey tetrahedron. At the largest ratio the thick classifier arrows have merged into one
# (MC_W printed above, close to 1) and are shorter than the majority's (the norm ratio above
# is below 1): the classifier can no longer tell the minority classes apart. Their class means
# have squeezed together too (MC_H, also printed above).

# %%
for ratio, run in views.items():
    plots.simplex_figure(
        run.means, run.weight, minority=run.final["minority"], title=f"Cross-entropy, IR {ratio:g}"
    ).show()

# %% [markdown]
# ## Explore it yourself
#
# Move the sliders: the imbalance ratio (log scale), the number of minority classes, the weight
# decay, and the method (plain cross-entropy, a fixed ETF classifier, or cross-entropy plus
# AllNC's P2P term). Each change re-runs the UFM (well under half a second for every method on
# a CPU) and redraws the figure and the table of metrics below it. The explorer gives each
# majority class 10 000 samples, so that the minority count, a whole number, gives the ratio on
# the slider (the table shows both). Things to try: find the ratio at which MC_W crosses 0;
# click the slider's handle at IR 100 and press the right arrow key a few times (each press
# multiplies the ratio by about 1.06) and watch MC_W race to 1 near IR 200 (the next section
# but one explains why); see how a smaller weight decay moves that point; switch to the fixed
# ETF classifier and watch which arrows stay put and which still squeeze.

# %%
explorer = widgets.minority_collapse_explorer(num_classes=K, seed=SEED)
explorer.widget

# %% [markdown]
# ## A sweep over imbalance ratios
#
# `ufm.imbalance_sweep` runs the UFM at every ratio of `RATIOS` and collects the minority
# metrics. The upper panel shows MC_W and MC_H against the imbalance ratio (log axis), the
# dotted line the ETF value $-1/(K-1)$; the lower panel the average norm of a minority
# classifier row relative to a majority one.

# %%
ce = ufm.imbalance_sweep(RATIOS, num_classes=K, n_max=N_MAX, **decay)
for r in ce:
    print(
        f"IR {r['ratio']:5g}: MC_W {r['mc_weights']:+.3f}, MC_H {r['mc_means']:+.3f}, "
        f"norm ratios: classifier {r['weight_norm_ratio']:.2f}, means {r['mean_norm_ratio']:.2f}"
    )
plots.sweep_records_figure(ce, title="Cross-entropy: minority collapse grows with imbalance").show()

# %% [markdown]
# Both cosines start at $-1/(K-1)$ at IR 1 and climb with the imbalance, up to the values
# printed for the largest ratio, while the minority classifiers shrink to a fraction of the
# majority's length (the norm ratios, below 1). With weight decay, a minority class whose few
# samples hardly move the loss is not worth a long, well-separated classifier vector.

# %% [markdown]
# ## A threshold: complete minority collapse
#
# At the largest ratios the sweep reaches MC_W = 1 exactly, not just close to it. Finer steps show
# how: MC_W climbs ever faster and then sits at 1.000 from a threshold ratio on. This is a
# property of the model's optimum, not of the solver (every run below converged, from any
# seed): below the threshold the best solution keeps a small angle between the minority
# classifiers; past it, the best solution makes them **one and the same vector**, so the
# classifier cannot tell the minority classes apart at all, and their centred class means merge
# too (MC_H = 1). Fang et al. (2021) call this *minority collapse* and show it sets in at a
# finite imbalance ratio. The runs use `THRESHOLD_N_MAX` samples per majority class, so that
# rounding the minority count to a whole number does not move the ratio, and up to
# `THRESHOLD_STEPS` steps, because gradient descent slows down near the threshold.

# %%
threshold_runs = {
    ratio: ufm.simulate(
        long_tail_counts(THRESHOLD_N_MAX, K, ratio, profile="step"), steps=THRESHOLD_STEPS, **decay
    )
    for ratio in THRESHOLD_RATIOS
}
fine = [
    {"ratio": ratio, **run.final, "converged": run.converged}
    for ratio, run in threshold_runs.items()
]
bracket = ufm.complete_collapse(fine)
for r in fine:
    print(
        f"IR {r['ratio']:5g}: MC_W {fixed(r['mc_weights'], signed=True)}, "
        f"MC_H {fixed(r['mc_means'], signed=True)}, converged: {r['converged']}"
    )
print(f"complete minority collapse (MC_W >= 0.999) between IR {bracket[0]:g} and {bracket[1]:g}")
plots.minority_collapse_sweep_figure(
    THRESHOLD_RATIOS,
    [r["mc_weights"] for r in fine],
    [r["mc_means"] for r in fine],
    [ufm.minority_norm_ratios(r)[0] for r in fine],
    num_classes=K,
    collapse=bracket,
    title="Cross-entropy: complete minority collapse past a threshold ratio",
).show()

# %% [markdown]
# The shaded band brackets the threshold: MC_W is below 1 at its left edge and exactly 1 at its
# right edge and beyond. The slider below steps through the same runs in 3D (it works without a
# running kernel): watch the two thick minority classifier arrows close up between IR 150 and
# 190 and become a single arrow past the band.

# %%
plots.slider_figure(
    {
        f"{ratio:g}": plots.simplex_figure(
            run.means,
            run.weight,
            minority=run.final["minority"],
            title=f"Cross-entropy, IR {ratio:g}: MC_W {fixed(run.final['mc_weights'], 3)}",
        )
        for ratio, run in threshold_runs.items()
    },
    label="IR ",
).show()

# %% [markdown]
# ## The SELI limit
#
# What if the weight decay goes to zero? Thrampoulidis et al. (2022) showed that the UFM with a
# per-sample feature penalty then converges, in direction, to the **SELI** geometry
# (simplex-encoded-labels interpolation): the most economical W and H whose logits $W h_k$
# reproduce the centred one-hot label of each class exactly. At balance SELI is the simplex ETF;
# under imbalance its Gram matrices depend on the class counts, and `geometry.seli_geometry`
# computes them in closed form.
#
# `ufm.seli_sweep` runs the UFM with `feature_penalty="sample"` for decreasing weight decays and
# reports the distance between its normalised Gram matrices and SELI's, for the classifier and
# for the centred class means.

# %%
seli_counts = long_tail_counts(N_MAX, K, SELI_RATIO, profile="step")
seli = geometry.seli_geometry(seli_counts)
seli_sweep = ufm.seli_sweep(seli_counts, SELI_WEIGHT_DECAYS, seed=SEED)
print(f"counts {seli_counts}")
for r in seli_sweep:
    print(
        f"weight decay {r['weight_decay']:.0e}: Gram distance to SELI: classifier "
        f"{r['weight_distance']:.3f}, means {r['means_distance']:.3f} "
        f"(MC_W {r['mc_weights']:+.3f}, MC_H {r['mc_means']:+.3f})"
    )
seli_mc = metrics.metrics_from_class_stats(
    seli_counts, seli.embeddings, weight=seli.weight, minority=minority_classes(seli_counts)
)
print(f"SELI itself: MC_W {seli_mc.mc_weights:+.3f}, MC_H {seli_mc.mc_means:+.3f}")

# %% [markdown]
# Both distances shrink as the weight decay decreases (slowly: the convergence is logarithmic).
# In the SELI limit the minority classifiers lean towards each other (SELI's MC_W, printed last,
# lies above $-1/(K-1)$) but without merging (it stays below 1), while the minority embeddings
# spread *apart* (SELI's MC_H lies below $-1/(K-1)$). The sweep above used the default
# `feature_penalty="class"`, which charges every class's mean feature norm equally, however few
# its samples; there the minority means squeezed. So it is the regularisation, and how it weighs
# the classes, that decides whether the means squeeze too. The heatmaps show SELI's cosine
# matrices: the minority block (the last rows and columns) stands out from the ETF's uniform
# $-1/(K-1)$.

# %%
plots.gram_heatmap(
    seli.embeddings, seli.weight, title=f"SELI geometry for counts {seli_counts}"
).show()

# %% [markdown]
# ## Fixing the classifier fixes the classifier only
#
# A popular remedy (Yang et al. 2022) fixes W to a simplex ETF from the start and trains only
# the features: the minority classifiers cannot squeeze, by construction. The same sweep with
# `classifier="etf"`:

# %%
etf = ufm.imbalance_sweep(RATIOS, num_classes=K, n_max=N_MAX, classifier="etf", **decay)
for r in etf:
    print(
        f"IR {r['ratio']:5g}: MC_W {r['mc_weights']:+.6f}, MC_H {r['mc_means']:+.3f}, "
        f"minority/majority mean norm {r['mean_norm_ratio']:.2f}, "
        f"self-duality gap {r['self_duality']:.3f}"
    )
plots.sweep_records_figure(
    etf, norms=False, title="Fixed ETF classifier: W holds, the minority means still squeeze"
).show()

# %% [markdown]
# MC_W is pinned at $-1/(K-1)$ at every ratio, but MC_H still climbs: the minority features,
# penalised as much as the majority's while contributing little to the loss, stay short (the
# mean norm ratio falls below 1) and drift towards each other, away from their own classifier
# vectors (the self-duality gap grows from 0 at IR 1). In the figure below, the thick
# classifier arrows (diamonds) sit on the grey tetrahedron while the thick mean arrows (circles)
# are short and close together: self-duality (NC3) is broken.
#
# This is **AllNC's observation**: minority collapse is not only a classifier problem; the
# class means of the minority classes squeeze too, and a fixed ETF classifier leaves them
# squeezed. AllNC therefore adds a *peer-to-peer* (P2P) loss that aligns every centred class mean
# with its classifier vector and pushes it away from every other class's, towards the shared ETF
# (`losses.p2p_loss` implements it for real networks).

# %%
etf_run = ufm.simulate(views[LARGEST].counts, classifier="etf", **decay)
plots.simplex_figure(
    etf_run.means,
    etf_run.weight,
    minority=etf_run.final["minority"],
    title=f"Fixed ETF classifier, IR {LARGEST:g}",
).show()

# %% [markdown]
# ## A teaser: CE + P2P repairs both
#
# The UFM can simulate the P2P term on its class means and classifier (`allnc=P2P_LAMBDA`, the
# weight $\lambda_p$). The same sweep:

# %%
p2p = ufm.imbalance_sweep(RATIOS, num_classes=K, n_max=N_MAX, allnc=P2P_LAMBDA, **decay)
for r, base in zip(p2p, ce, strict=True):
    print(
        f"IR {r['ratio']:5g}: MC_W {r['mc_weights']:+.3f} (CE {base['mc_weights']:+.3f}), "
        f"MC_H {r['mc_means']:+.3f} (CE {base['mc_means']:+.3f})"
    )
plots.sweep_records_figure(
    p2p, title="CE + P2P: classifiers and means both stay near the ETF"
).show()

# %% [markdown]
# With P2P, MC_W and MC_H stay close to $-1/(K-1)$ even at the largest ratio, far below the
# plain cross-entropy values printed in parentheses: the means and the classifiers are
# restored together. The UFM is only a model of the last layer; the later notebooks train real
# networks on long-tailed data to see how much of this survives.
#
# The key numbers of this run, for the tests:

# %%
summary = {
    "num_classes": K,
    "n_max": N_MAX,
    "weight_decay": WEIGHT_DECAY,
    "ratios": RATIOS,
    "etf_cosine": ETF_COSINE,
    "mc_weights": [r["mc_weights"] for r in ce],
    "mc_means": [r["mc_means"] for r in ce],
    "weight_norm_ratios": [r["weight_norm_ratio"] for r in ce],
    "mean_norm_ratios": [r["mean_norm_ratio"] for r in ce],
    "etf_mc_weights": [r["mc_weights"] for r in etf],
    "etf_mc_means": [r["mc_means"] for r in etf],
    "etf_mean_norm_ratios": [r["mean_norm_ratio"] for r in etf],
    "etf_self_duality": [r["self_duality"] for r in etf],
    "seli_ratio": SELI_RATIO,
    "seli_weight_decays": SELI_WEIGHT_DECAYS,
    "seli_distances": [r["weight_distance"] for r in seli_sweep],
    "seli_means_distances": [r["means_distance"] for r in seli_sweep],
    "seli_mc": {"weights": seli_mc.mc_weights, "means": seli_mc.mc_means},
    "threshold": {
        "n_max": THRESHOLD_N_MAX,
        "ratios": THRESHOLD_RATIOS,
        "mc_weights": [r["mc_weights"] for r in fine],
        "mc_means": [r["mc_means"] for r in fine],
        "converged": [r["converged"] for r in fine],
        "bracket": list(bracket),
    },
    "explorer_n_max": explorer.n_max,
    "p2p": {
        "lambda_p": P2P_LAMBDA,
        "mc_weights": [r["mc_weights"] for r in p2p],
        "mc_means": [r["mc_means"] for r in p2p],
        "converged": [r["converged"] for r in p2p],
    },
}
Path(RESULTS_PATH).parent.mkdir(parents=True, exist_ok=True)
Path(RESULTS_PATH).write_text(json.dumps(summary, indent=2))
print(json.dumps({k: summary[k] for k in ("ratios", "mc_weights", "etf_mc_means")}, indent=1))
