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
# (*minority collapse*, Fang et al. 2021). We measure it across imbalance ratios, find the ratio
# where it becomes complete, see that the feature penalty decides whether the class means
# squeeze too, and take apart what a fixed ETF classifier (Yang et al. 2022) leaves of the
# squeeze: a squeeze of the *centred* means that is made of length, not direction. That
# observation is where AllNC (Zhang et al. 2024) starts.
#
# **What you will learn**
#
# - measure minority collapse with MC_W and MC_H, and compute MC_W yourself;
# - find, with the explorer, where MC_W crosses 0 and where minority collapse becomes complete;
# - say what the per-class and the per-sample feature penalties do to the minority means at the
#   same weight decay;
# - tell a squeeze of direction from a squeeze of length seen through centring, with raw,
#   centred and normalised means;
# - (optional) compare the UFM with its SELI limit.
#
# **Before you start**: notebook 01 (NC1-NC4, the simplex ETF, the UFM's objective and its two
# feature penalties, the centring convention).
#
# **Time**: about an hour with the exercises and the questionnaire. The code runs in under a
# minute on a 2-core CPU.

# %% tags=["for-tests"]
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

import torch  # noqa: F401, RUF100  (the exercises are answered with torch)

from allnc_edu import (
    feedback,
    geometry,
    lessons_ufm,
    metrics,
    plots,
    predictions,
    quiz,
    sweep_figures,
    ufm,
    widgets,
)
from allnc_edu.data import long_tail_counts
from allnc_edu.exercises import EXERCISES
from allnc_edu.fmt import fixed
from allnc_edu.groups import minority_classes

K, LARGEST = NUM_CLASSES, max(RATIOS)
ETF_COSINE = -1 / (K - 1)
decay = {"weight_decay_w": WEIGHT_DECAY, "weight_decay_h": WEIGHT_DECAY, "seed": SEED}

# %% [markdown]
# ## The squeeze at a glance
#
# We use a *step* [imbalance profile](../docs/glossary.md#imbalance-profile): the first K//2
# classes get `N_MAX` samples each, the other K - K//2 classes, the [minority
# classes](../docs/glossary.md#minority-classes), get `N_MAX / IR`, IR being the [imbalance
# ratio](../docs/glossary.md#imbalance-ratio). Two numbers summarise what happens to the
# minority: [MC_W](../docs/glossary.md#mc_w), the average pairwise cosine of the minority
# classifier rows, and [MC_H](../docs/glossary.md#mc_h), the same for their class means centred
# on the class-balanced global mean (notebook 01's convention, used throughout). Both equal
# $-1/(K-1)$ at an ETF and reach 1 when the minority vectors all point the same way. Every run in
# this notebook uses the UFM with the per-class feature penalty (the layer-peeled model), the
# package's default, unless it says otherwise.

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
# is below 1): the classifier can no longer tell the minority classes apart. Their centred class
# means have merged too (MC_H, also printed above).

# %%
for ratio, run in views.items():
    plots.simplex_figure(
        run.means, run.weight, minority=run.final["minority"], title=f"Cross-entropy, IR {ratio:g}"
    ).show()

# %% [markdown]
# ### Exercise 02-mc-w: MC_W from a classifier
#
# Compute MC_W yourself from a trained classifier of six classes.

# %%
print(EXERCISES["02-mc-w"].prompt)

# %%
weight = EXERCISES["02-mc-w"].given["weight"]  # (6, 8), one row per class
counts = EXERCISES["02-mc-w"].given["counts"]  # (6,) training counts
### BEGIN SOLUTION
minority = [3, 4, 5]
unit = weight[minority] / weight[minority].norm(dim=1, keepdim=True)
cosines = unit @ unit.T
answer = cosines[torch.triu_indices(3, 3, 1).unbind()].mean()
### END SOLUTION
EXERCISES["02-mc-w"].check(answer)
# EXERCISES["02-mc-w"].hint()   # EXERCISES["02-mc-w"].solution()

# %% [markdown]
# ## Explore it yourself
#
# Move the sliders: the imbalance ratio (log scale), the number of minority classes, the weight
# decay, and the method (plain cross-entropy, a fixed ETF classifier, or cross-entropy plus
# AllNC's P2P term). Each change re-runs the UFM (well under half a second for every method on
# a CPU) and redraws the figure and the table of metrics below it. The explorer gives each
# majority class 10 000 samples, so that the minority count, a whole number, gives the ratio on
# the slider (the table shows both). To move in small steps, click the slider's handle and press
# the arrow keys (each press multiplies the ratio by about 1.06).

# %%
explorer = widgets.minority_collapse_explorer(num_classes=K, seed=SEED)
explorer.widget

# %% [markdown]
# ### Exercise 02-mc-w-zero: where MC_W crosses 0
#
# Read it off the explorer: cross-entropy, two minority classes, weight decay at its default
# 5e-3. Write the ratio as `answer`.

# %%
print(EXERCISES["02-mc-w-zero"].prompt)

# %%
### BEGIN SOLUTION
answer = 43  # read off the explorer: MC_W changes sign between IR 42 and 45
### END SOLUTION
EXERCISES["02-mc-w-zero"].check(answer)
# EXERCISES["02-mc-w-zero"].hint()   # EXERCISES["02-mc-w-zero"].solution()

# %% [markdown]
# ### Exercise 02-complete-collapse: complete collapse at a larger weight decay
#
# Now set the weight decay slider to 1e-2 and find where the two minority classifier arrows
# become one (MC_W shows 1.000). The next sections explain what you see.

# %%
print(EXERCISES["02-complete-collapse"].prompt)

# %%
### BEGIN SOLUTION
answer = 100  # read off the explorer: MC_W shows 1.000 from about IR 100 on
### END SOLUTION
EXERCISES["02-complete-collapse"].check(answer)
# EXERCISES["02-complete-collapse"].hint()   # EXERCISES["02-complete-collapse"].solution()

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
sweep_figures.sweep_records_figure(
    ce, title="Cross-entropy: minority collapse grows with imbalance"
).show()

# %% [markdown]
# Both cosines start at $-1/(K-1)$ at IR 1 and climb with the imbalance, up to the values
# printed for the largest ratio, while the minority classifiers shrink to a fraction of the
# majority's length (the norm ratios, below 1). With weight decay, a minority class whose few
# samples hardly move the loss is not worth a long, well-separated classifier vector.

# %% [markdown]
# ## A threshold: complete minority collapse
#
# At the largest ratios the sweep reaches MC_W = 1 exactly, not just close to it. Finer steps
# show how: MC_W climbs ever faster and then sits at 1.000 from a threshold ratio on. Below the
# threshold the model's optimum keeps a small angle between the minority classifiers; past it,
# the optimum makes them **one and the same vector**, so the classifier cannot tell the minority
# classes apart at all, and their centred class means merge too (MC_H = 1). The runs use
# `THRESHOLD_N_MAX` samples per majority class, so that rounding the minority count to a whole
# number does not move the ratio, and up to `THRESHOLD_STEPS` steps, because gradient descent
# slows down near the threshold.

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
bracket = geometry.complete_collapse(fine)
for r in fine:
    print(
        f"IR {r['ratio']:5g}: MC_W {fixed(r['mc_weights'], signed=True)}, "
        f"MC_H {fixed(r['mc_means'], signed=True)}, converged: {r['converged']}"
    )
print(f"complete minority collapse (MC_W >= 0.999) between IR {bracket[0]:g} and {bracket[1]:g}")
other_seed = {
    ratio: ufm.simulate(
        long_tail_counts(THRESHOLD_N_MAX, K, ratio, profile="step"),
        steps=THRESHOLD_STEPS,
        **{**decay, "seed": SEED + 1},
    )
    for ratio in bracket
}
for ratio, run in other_seed.items():
    print(
        f"seed {SEED + 1}, IR {ratio:g}: MC_W {fixed(run.final['mc_weights'], signed=True)} "
        f"(seed {SEED}: {fixed(threshold_runs[ratio].final['mc_weights'], signed=True)}), "
        f"converged: {run.converged}"
    )
sweep_figures.minority_collapse_sweep_figure(
    THRESHOLD_RATIOS,
    [r["mc_weights"] for r in fine],
    [r["mc_means"] for r in fine],
    [ufm.minority_norm_ratios(r)[0] for r in fine],
    num_classes=K,
    collapse=bracket,
    title="Cross-entropy: complete minority collapse past a threshold ratio",
).show()

# %% [markdown]
# Is the threshold a property of the model or of an unfinished run? Every run above converged
# (printed beside it), so MC_W = 1 is where gradient descent came to rest, not where it was cut
# short; and a second seed, run at the two ratios that bracket the threshold, lands on the same
# MC_W (printed last). We ran two seeds, not all of them: change `SEED` to try others.
#
# [Minority collapse](../docs/glossary.md#minority-collapse) is Fang et al.'s (2021) name. Their
# theorem is a limit statement: as the imbalance ratio goes to infinity, the differences between
# the minority classifiers vanish. That it is already complete at a finite ratio, near IR 200
# for K = 4 and weight decay 5e-3, is what this model shows numerically at these settings, not
# what their theorem says.
#
# The shaded band brackets the threshold: MC_W is below 1 at its left edge and exactly 1 at its
# right edge and beyond. The slider below steps through the same runs in 3D (it works without a
# running kernel): watch the two thick minority classifier arrows close up and become a single
# arrow past the band.

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
# ## The same weight decay, two penalties
#
# Everything so far used the per-class feature penalty, the [layer-peeled
# model](../docs/glossary.md#layer-peeled-model)'s: every class's mean squared feature norm counts
# the same, however few its samples. Notebook 01 wrote down the other choice, the per-sample
# penalty $\frac1N \sum_i \|h_i\|^2$, in which a class weighs $n_k/N$. On balanced data they are
# the same; here is what they do at the largest ratio, with the same $\lambda = $
# `WEIGHT_DECAY`. "raw" is the mean pairwise cosine of the minority means before any centring.

# %%
penalty_counts = long_tail_counts(N_MAX, K, LARGEST, profile="step")
penalty = lessons_ufm.penalty_comparison(penalty_counts, WEIGHT_DECAY, seed=SEED)
print(f"counts {penalty_counts}, weight decay {WEIGHT_DECAY}")
for name, r in penalty.items():
    print(
        f"per-{name:6s} penalty: MC_W {r['mc_weights']:+.3f}, MC_H {r['mc_means']:+.3f} "
        f"(raw {r['raw']:+.3f}), minority/majority norms: classifier "
        f"{r['weight_norm_ratio']:.2f}, means {r['mean_norm_ratio']:.2f}, "
        f"converged: {r['converged']}"
    )

# %% [markdown]
# Under both penalties the minority classifiers squeeze (MC_W printed, far above the ETF value
# $-1/(K-1)$). The means part ways. With the per-class penalty they merge (MC_H near 1) and are
# short. With the per-sample penalty the minority means spread *apart*, below the ETF value, and
# come out *longer* than the majority's: a class with a handful of samples pays almost nothing
# for long features. So whether the class means squeeze as well as the classifiers is decided by
# how the model penalises features, not by the imbalance alone. A paper's claim about minority
# means holds for its penalty; check which one before comparing.

# %% [markdown]
# ## Optional deep dive: the SELI limit
#
# *This section can be skipped on a first reading.* What if the weight decay goes to zero?
# Thrampoulidis et al. (2022) showed that the UFM with the per-sample penalty then converges, in
# direction, to the [SELI](../docs/glossary.md#seli) geometry (simplex-encoded-labels
# interpolation): the most economical W and H whose logits $W h_k$ reproduce the centred one-hot
# label of each class exactly. At balance SELI is the simplex ETF; under imbalance its Gram
# matrices depend on the class counts, and `geometry.seli_geometry` computes them in closed form.
#
# `ufm.seli_sweep` runs the UFM with `feature_penalty="sample"` for decreasing weight decays and
# reports the distance between its normalised Gram matrices and SELI's, for the classifier and
# for the centred class means; the drop from one weight decay to the next is printed too.

# %%
seli_counts = long_tail_counts(N_MAX, K, SELI_RATIO, profile="step")
seli = geometry.seli_geometry(seli_counts)
seli_sweep = ufm.seli_sweep(seli_counts, SELI_WEIGHT_DECAYS, seed=SEED)
seli_speed = lessons_ufm.seli_convergence(seli_sweep)
print(f"counts {seli_counts}")
for i, r in enumerate(seli_sweep):
    drops = ""
    if i > 0:
        drops = (
            f"; drop from the previous: {seli_speed['weight_drops'][i - 1]:.3f}, "
            f"{seli_speed['means_drops'][i - 1]:.3f}"
        )
    print(
        f"weight decay {r['weight_decay']:.0e}: Gram distance to SELI: classifier "
        f"{r['weight_distance']:.3f}, means {r['means_distance']:.3f}{drops} "
        f"(MC_W {r['mc_weights']:+.3f}, MC_H {r['mc_means']:+.3f})"
    )
seli_mc = metrics.metrics_from_class_stats(
    seli_counts, seli.embeddings, weight=seli.weight, minority=minority_classes(seli_counts)
)
print(f"SELI itself: MC_W {seli_mc.mc_weights:+.3f}, MC_H {seli_mc.mc_means:+.3f}")

# %% [markdown]
# Both distances shrink as the weight decay decreases, and slowly: each roughly threefold
# decrease of $\lambda$ removes less distance than the one before (the drops printed), so even
# at the smallest weight decay here the Gram matrices are visibly off SELI's. The limit is
# approached, not reached, at practical weight decays. In it, the minority classifiers lean
# towards each other (SELI's MC_W, printed last, lies above $-1/(K-1)$) but without merging (it
# stays below 1), while the minority embeddings spread *apart* (SELI's MC_H lies below
# $-1/(K-1)$), as the per-sample penalty did at the same $\lambda$ above. The heatmaps show
# SELI's cosine matrices: the minority block (the last rows and columns) stands out from the
# ETF's uniform $-1/(K-1)$.

# %%
plots.gram_heatmap(
    seli.embeddings, seli.weight, title=f"SELI geometry for counts {seli_counts}"
).show()

# %% [markdown]
# ## A fixed ETF classifier: what still squeezes, and what it is made of
#
# A popular remedy (Yang et al. 2022) fixes W to a simplex ETF from the start and trains only
# the features: the minority classifiers cannot squeeze, by construction. What happens to the
# minority class means? Predict first.

# %%
predictions.predict("02-predict-fixed-etf")

# %%
### BEGIN SOLUTION 02-predict-fixed-etf
PREDICTION = "B"
### END SOLUTION

# %% [markdown]
# The same sweep with `classifier="etf"`, the metrics centred as everywhere else:

# %%
etf = ufm.imbalance_sweep(RATIOS, num_classes=K, n_max=N_MAX, classifier="etf", **decay)
for r in etf:
    print(
        f"IR {r['ratio']:5g}: MC_W {r['mc_weights']:+.6f}, MC_H {r['mc_means']:+.3f}, "
        f"self-duality gap {r['self_duality']:.3f}"
    )
sweep_figures.sweep_records_figure(
    etf, norms=False, title="Fixed ETF classifier: MC_W holds, the centred MC_H climbs"
).show()

# %% [markdown]
# MC_W is pinned at $-1/(K-1)$ at every ratio, as it must be, but the centred MC_H climbs and the
# self-duality gap grows from 0. Taken at face value, the minority means squeeze together and
# leave their classifier rows. Do they? Look at the same means before centring: for each ratio,
# the raw minority means' cosine with their own classifier rows, their mean pairwise cosine raw,
# centred on each global mean, and normalised to length 1 before centring (`squeeze`), and
# their length relative to the majority's.

# %%
etf_squeeze = {}
for ratio in RATIOS:
    counts = long_tail_counts(N_MAX, K, ratio, profile="step")
    etf_squeeze[ratio] = lessons_ufm.raw_and_centred(
        ufm.simulate(counts, classifier="etf", **decay)
    )
print("own row: the smallest cosine of a raw minority mean with its own classifier row")
print("pairwise: the minority means' mean pairwise cosine, raw, centred on the class-balanced")
print("  and on the sample-weighted global mean, and normalised to length 1 before centring")
print("length: the raw minority mean length over the majority's")
heads = f"{'raw':>8s} {'balanced':>9s} {'weighted':>9s} {'normalised':>11s}"
print(f"{'':10s} {'own row':>8s} | {heads} |")
for ratio, s in etf_squeeze.items():
    print(
        f"IR {ratio:5g}: {min(s['own_cosines']):8.4f} | {s['raw']:+8.3f} {s['balanced']:+9.3f} "
        f"{s['weighted']:+9.3f} {s['normalised']:+11.3f} | length {s['norm_ratio']:.3f}"
    )
print(f"ETF value -1/(K-1) = {ETF_COSINE:+.3f}")

# %%
etf_run = ufm.simulate(views[LARGEST].counts, classifier="etf", **decay)
predictions.reveal("02-predict-fixed-etf", PREDICTION, measured=etf_run)

# %% [markdown]
# Read it column by column. The raw minority means stay **on their own classifier rows** (cosine
# 1.000 at every ratio) and **at the ETF angle to each other** (raw cosine $-1/(K-1)$
# throughout); normalised before centring they are still an ETF. Only their **length** changes:
# the minority means shrink to a fraction of the majority's (the last column). The centred
# squeeze is made of that length, seen through centring. With W fixed (K = 4 here, two classes
# of each size), the means are $m_k = \ell_k e_k$ along ETF directions $e_k$ that sum to zero,
# so the class-balanced global mean is $\frac{\ell_{maj} - \ell_{min}}{4}(e_1 + e_2)$ and
# centring adds the *same* vector $\frac{\ell_{maj} - \ell_{min}}{4}(e_3 + e_4)$ to both
# minority means. The shorter they are,
# the more that shared vector dominates them, and the closer together (and further from their
# own rows) the centred means point: MC_H and the self-duality gap rise though no mean turned.
# Centred on the sample-weighted mean, which sits even closer to the majority, the effect is
# larger still.
#
# In the figure below, the thick classifier arrows (diamonds) sit on the grey tetrahedron while
# the thick centred mean arrows (circles) are short and close together: the view centres the
# means, as the metrics do.

# %%
plots.simplex_figure(
    etf_run.means,
    etf_run.weight,
    minority=etf_run.final["minority"],
    title=f"Fixed ETF classifier, IR {LARGEST:g}",
).show()

# %% [markdown]
# This is what AllNC's observation looks like in the UFM: fixing the classifier does not stop
# the *centred* minority means from squeezing, and self-duality (NC3), measured on centred means,
# breaks. Here that is a matter of length. Whether a trained network's minority means also turn
# (a squeeze of direction) is a question for real features: notebook 03 measures it the same
# three ways.
#
# ## A teaser: CE + P2P
#
# AllNC adds a *peer-to-peer* loss, [P2P](../docs/glossary.md#p2p), on the centred, normalised
# class means $\tilde M$ and the normalised classifier rows $\hat W$:
# $\frac{1}{K^2} \| \tilde M \hat W^\top - G^\ast \|_F^2$, with $G^\ast$ the ETF Gram (1 on the
# diagonal, $-1/(K-1)$ off it). The diagonal pulls each centred mean onto its own classifier
# row; the off-diagonal drives the cosine between each mean and every *other* class's row to
# $-1/(K-1)$, pulling or pushing as needed. This P2P is a **reconstruction**: the AllNC paper's
# exact equations were not available, and every reconstructed choice is a named option
# (`losses.p2p_loss`; see [the method](../docs/method.md)). Because it works on normalised rows, it
# ignores lengths: it targets exactly the directions that centring tilts. The UFM can simulate it
# on its class means and classifier (`allnc=P2P_LAMBDA`, the weight $\lambda_p$). The same sweep:

# %%
p2p = ufm.imbalance_sweep(RATIOS, num_classes=K, n_max=N_MAX, allnc=P2P_LAMBDA, **decay)
for r, base in zip(p2p, ce, strict=True):
    print(
        f"IR {r['ratio']:5g}: MC_W {r['mc_weights']:+.3f} (CE {base['mc_weights']:+.3f}), "
        f"MC_H {r['mc_means']:+.3f} (CE {base['mc_means']:+.3f})"
    )
sweep_figures.sweep_records_figure(
    p2p, title="CE + P2P: classifiers and centred means both stay near the ETF"
).show()

# %% [markdown]
# With P2P, MC_W and MC_H stay close to $-1/(K-1)$ even at the largest ratio, far below the
# plain cross-entropy values printed in parentheses: the centred means and the classifiers are
# held at the ETF together. The UFM is only a model of the last layer; the later notebooks train
# real networks on long-tailed data to see how much of this survives.

# %% [markdown]
# ## Key takeaways
#
# - Under imbalance the minority classifier rows squeeze together and shrink (MC_W rises from
#   $-1/(K-1)$); in the UFM at weight decay 5e-3 they merge completely from about IR 200 on, a
#   finite threshold seen numerically (Fang et al. prove the limit).
# - Whether the minority *means* squeeze too depends on the feature penalty: at the same
#   weight decay, the per-class penalty (layer-peeled model) merges them, the per-sample one
#   spreads them apart and lengthens them.
# - MC_H is a cosine of *centred* means. It rises when the means turn, and also when they only
#   shrink: with a fixed ETF classifier the raw minority means keep their direction exactly, and
#   the centred squeeze is all length. Measure raw, centred and normalised means before calling
#   a squeeze a squeeze of direction.
# - SELI is the per-sample UFM's limit as the weight decay vanishes; the approach is slow.
# - P2P aligns normalised centred means with normalised classifier rows at the ETF; in the UFM it
#   holds both MC_W and MC_H near $-1/(K-1)$.
#
# ## Questionnaire
#
# Answer in place: pick or type an answer and press Check. Without widgets, answer each
# question with `quiz.ask("02-q1", answer)`, the answer a letter or a number. Further
# research tasks follow the questions.

# %%
quiz.questionnaire("02")

# %% [markdown]
# ## References
#
# - Fang, He, Long and Su (2021), Exploring deep neural networks via layer-peeled model:
#   minority collapse in imbalanced training. PNAS. https://doi.org/10.1073/pnas.2103091118
# - Thrampoulidis, Kini, Vakilian and Behnia (2022), Imbalance trouble: revisiting
#   neural-collapse geometry. NeurIPS. https://arxiv.org/abs/2208.05512
# - Yang, Chen, Li, Xie, Lin and Tao (2022), Inducing neural collapse in imbalanced learning: do
#   we really need a learnable classifier at the end of deep neural network? NeurIPS.
#   https://arxiv.org/abs/2203.09081
# - Zhang, Li, Geng and Chen (2024), All-around neural collapse for imbalanced classification.
#   https://arxiv.org/abs/2408.07253
# - Papyan, Han and Donoho (2020), Prevalence of neural collapse during the terminal phase of
#   deep learning training. PNAS. https://doi.org/10.1073/pnas.2015509117
# - Zhu, Ding, Zhou, Li, You, Sulam and Qu (2021), A geometric analysis of neural collapse with
#   unconstrained features. NeurIPS. https://arxiv.org/abs/2105.02375
# - Kothapalli (2023), Neural collapse: a review on modelling principles and generalization.
#   TMLR. https://arxiv.org/abs/2206.04041

# %% tags=["for-tests"]
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
    "etf_squeeze": [{"ratio": ratio, **s} for ratio, s in etf_squeeze.items()],
    "penalty_comparison": {"counts": penalty_counts, **penalty},
    "seli_ratio": SELI_RATIO,
    "seli_weight_decays": SELI_WEIGHT_DECAYS,
    "seli_distances": [r["weight_distance"] for r in seli_sweep],
    "seli_means_distances": [r["means_distance"] for r in seli_sweep],
    "seli_convergence": seli_speed,
    "seli_mc": {"weights": seli_mc.mc_weights, "means": seli_mc.mc_means},
    "threshold": {
        "n_max": THRESHOLD_N_MAX,
        "ratios": THRESHOLD_RATIOS,
        "mc_weights": [r["mc_weights"] for r in fine],
        "mc_means": [r["mc_means"] for r in fine],
        "converged": [r["converged"] for r in fine],
        "bracket": list(bracket),
        "other_seed": {
            "seed": SEED + 1,
            "mc_weights": [run.final["mc_weights"] for run in other_seed.values()],
            "converged": [run.converged for run in other_seed.values()],
        },
    },
    "explorer_n_max": explorer.n_max,
    "p2p": {
        "lambda_p": P2P_LAMBDA,
        "mc_weights": [r["mc_weights"] for r in p2p],
        "mc_means": [r["mc_means"] for r in p2p],
        "converged": [r["converged"] for r in p2p],
    },
    "verdicts": feedback.verdicts(),
}
Path(RESULTS_PATH).parent.mkdir(parents=True, exist_ok=True)
Path(RESULTS_PATH).write_text(json.dumps(summary, indent=2))
print(json.dumps({k: summary[k] for k in ("ratios", "mc_weights", "etf_mc_means")}, indent=1))
