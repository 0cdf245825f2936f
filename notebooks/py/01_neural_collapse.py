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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/allnc-edu/allnc-edu/blob/main/notebooks/01_neural_collapse.ipynb)
#
# # 01 · Neural collapse: four properties and one shape
#
# At the end of training on balanced data, the last layer of a classifier settles into a
# strikingly simple geometry (Papyan, Han and Donoho, 2020): the features of each class shrink
# onto their class mean, the class means spread out as far from each other as possible, in a
# shape called a *simplex equiangular tight frame* (ETF), and the classifier lines up with them.
# This notebook states the four neural-collapse properties NC1-NC4 with the exact formulas
# `allnc_edu.metrics` computes, builds the simplex ETF, writes down the *unconstrained-features
# model* (UFM) and watches it reach that ETF, and then trains a real network to see how much of
# the shape a minute of training produces.
#
# **What you will learn**
#
# - state the four neural-collapse properties and compute NC1 from features yourself;
# - build a simplex ETF and find the angle between its vectors;
# - write the UFM's objective, and say which of its results depend on how it penalises the
#   features;
# - explain why NC1 holds automatically in the UFM, and read its figures accordingly;
# - say which global mean a centred metric uses, and how much that choice moves it;
# - recognise neural collapse, partly formed, in a network trained for a minute or two.
#
# **Before you start**: dot products, norms and cosines; covariance matrices and the
# pseudo-inverse; softmax cross-entropy and weight decay; enough PyTorch to index, reduce and
# multiply tensors.
#
# **Time**: about 45 minutes with the exercises and the questionnaire. The code runs in about a
# minute on a 2-core CPU (the network's training is most of it).

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
RESULTS_PATH = "results/01_neural_collapse.json"
NUM_CLASSES = 4  # K for the UFM run
SAMPLES_PER_CLASS = 300  # n, the same for every class (balanced data)
WEIGHT_DECAY = 0.005  # lambda_W and lambda_H (both)
STEPS = 4000  # at most; the run stops once converged
SNAPSHOT_STEPS = [1, 40]  # 3D snapshots early in training, for comparison
RECORD_EVERY = 5  # record the metrics every this many steps
CENTRING_N_MAX = 1000  # majority count of the imbalanced UFM run of the centring section
CENTRING_RATIO = 100  # its imbalance ratio
CNN_SIGNALS_PER_CLASS = 200  # MNIST-1D training signals per digit (balanced)
CNN_EPOCHS = 100  # training epochs of the real network
CNN_WEIGHT_DECAY = 0.005  # its SGD weight decay

# %%
if SMOKE:  # smaller, shorter; a larger weight decay gets the network further in fewer epochs
    SAMPLES_PER_CLASS = 30
    CNN_SIGNALS_PER_CLASS = 50
    CNN_EPOCHS = 20
    CNN_WEIGHT_DECAY = 0.01

# %%
import json
from pathlib import Path

import torch  # noqa: F401, RUF100  (the exercises are answered with torch)

from allnc_edu import (
    data,
    experiments,
    feedback,
    geometry,
    lessons_ufm,
    metrics,
    plots,
    predictions,
    quiz,
    ufm,
)
from allnc_edu.exercises import EXERCISES
from allnc_edu.fmt import plural

# %% [markdown]
# ## The four properties
#
# Notation: K classes, features $h_i \in \mathbb{R}^d$ with labels $y_i$, class means
# $\mu_k$, the class-balanced global mean $\mu_G = \frac1K \sum_k \mu_k$, centred means
# $\bar\mu_k = \mu_k - \mu_G$ (a [centred mean](../docs/glossary.md#centred-mean); another
# global mean is possible, see "Which global mean?" below) stacked as the rows of $\bar M$
# (K × d), and the classifier $W$ (K × d, one row $w_k$ per class). Papyan et al. saw these
# properties emerge in the [terminal phase of
# training](../docs/glossary.md#terminal-phase-of-training), after the training error reached
# zero.
#
# - **[NC1](../docs/glossary.md#nc1), variability collapse.** Every feature sits on its class
#   mean. With the within-class and between-class covariances
#   $\Sigma_W = \frac1N \sum_i (h_i - \mu_{y_i})(h_i - \mu_{y_i})^\top$ and
#   $\Sigma_B = \frac1K \sum_k \bar\mu_k \bar\mu_k^\top$, the metric is
#   $\mathrm{NC1} = \frac1K \operatorname{Tr}(\Sigma_W \Sigma_B^{+})$, which is 0 at collapse.
# - **[NC2](../docs/glossary.md#nc2), simplex ETF.** The centred means have equal norms and
#   pairwise cosine $-1/(K-1)$, the most negative value K vectors can share. Scale and rotation
#   do not matter, so the metric compares normalised Gram matrices:
#   $\left\| \frac{\bar M \bar M^\top}{\|\bar M \bar M^\top\|_F} -
#   \frac{I - J/K}{\sqrt{K-1}} \right\|_F$ (J the all-ones matrix), 0 at an ETF. The same
#   distance is reported for the rows of W.
# - **[NC3](../docs/glossary.md#nc3), [self-duality](../docs/glossary.md#self-duality).** The
#   classifier is the means, up to scale:
#   $\left\| \frac{W}{\|W\|_F} - \frac{\bar M}{\|\bar M\|_F} \right\|_F = 0$.
# - **[NC4](../docs/glossary.md#nc4), nearest class centre.** The classifier's decision
#   $\arg\max_k w_k^\top h$ equals the nearest class mean $\arg\min_k \|h - \mu_k\|$ on every
#   sample (agreement 1).
#
# Notebook 02 adds two more numbers for imbalanced data, [MC_W](../docs/glossary.md#mc_w) and
# [MC_H](../docs/glossary.md#mc_h): the average pairwise cosine among the minority classes'
# classifier rows and centred means. At an ETF both equal $-1/(K-1)$.
#
# ### Exercise 01-nc1: NC1 from features
#
# Compute NC1 yourself from a small set of features of four classes of unequal size, following
# the formula above (the prompt below spells out each piece). Replace `answer = ...` with your
# code and run the cell: the check says whether it is right, and if not, which usual mistake it
# recognises. `EXERCISES["01-nc1"].hint()` gives a hint (call it again for the next one),
# `.solution()` the solution.

# %%
print(EXERCISES["01-nc1"].prompt)

# %%
features = EXERCISES["01-nc1"].given["features"]  # (N, 3)
labels = EXERCISES["01-nc1"].given["labels"]  # (N,), classes 0..3
### BEGIN SOLUTION
K = 4
means = torch.stack([features[labels == k].mean(dim=0) for k in range(K)])
centred = means - means.mean(dim=0)
deviations = features - means[labels]
sigma_w = deviations.T @ deviations / len(features)
sigma_b = centred.T @ centred / K
answer = torch.trace(sigma_w @ torch.linalg.pinv(sigma_b)) / K
### END SOLUTION
EXERCISES["01-nc1"].check(answer)
# EXERCISES["01-nc1"].hint()   # EXERCISES["01-nc1"].solution()

# %% [markdown]
# ## The simplex ETF
#
# A [simplex ETF](../docs/glossary.md#simplex-etf) is K unit vectors (any common length will do)
# whose pairwise cosines all equal $-1/(K-1)$. To check that a set of vectors is one, we need the
# matrix of cosines between its rows: your first exercise.
#
# ### Exercise 01-cosines: cosines between rows

# %%
print(EXERCISES["01-cosines"].prompt)

# %%
vectors = EXERCISES["01-cosines"].given["vectors"]  # (4, 3), rows of unequal length
### BEGIN SOLUTION
unit = vectors / vectors.norm(dim=1, keepdim=True)
answer = unit @ unit.T
### END SOLUTION
EXERCISES["01-cosines"].check(answer)
# EXERCISES["01-cosines"].hint()   # EXERCISES["01-cosines"].solution()

# %% [markdown]
# `geometry.simplex_etf(K, K - 1)` returns K unit vectors in K-1 dimensions with pairwise
# cosine $-1/(K-1)$: for K = 3 an equilateral triangle in a plane, for K = 4 a regular
# tetrahedron. Here are their cosine matrices and angles.

# %%
etf_cosines, etf_angles = {}, {}
for k in (3, 4):
    cosines = geometry.cosine_matrix(geometry.simplex_etf(k, k - 1))
    angles = geometry.angles_degrees(cosines)
    etf_cosines[k], etf_angles[k] = cosines.tolist(), angles.tolist()
    print(f"K = {k}: -1/(K-1) = {-1 / (k - 1):.4f}")
    print("cosines:\n", cosines.numpy().round(4))
    print("angles (degrees):\n", angles.numpy().round(2), "\n")

# %% [markdown]
# Every off-diagonal cosine above is exactly $-1/(K-1)$: -0.5 for K = 3 and -0.3333 for K = 4.
#
# ### Exercise 01-etf: build one yourself
#
# Build a K = 4 simplex ETF without `geometry.simplex_etf`. (A hint to start: what are the
# pairwise cosines of the rows of $I - J/K$?)

# %%
print(EXERCISES["01-etf"].prompt)

# %%
### BEGIN SOLUTION
K = 4
answer = (torch.eye(K, dtype=torch.float64) - 1 / K) * (K / (K - 1)) ** 0.5
### END SOLUTION
EXERCISES["01-etf"].check(answer)
# EXERCISES["01-etf"].hint()   # EXERCISES["01-etf"].solution()

# %% [markdown]
# ### Exercise 01-etf-angle: the angle

# %%
print(EXERCISES["01-etf-angle"].prompt)

# %%
### BEGIN SOLUTION
import math

answer = math.degrees(math.acos(-1 / 3))
### END SOLUTION
EXERCISES["01-etf-angle"].check(answer)
# EXERCISES["01-etf-angle"].hint()   # EXERCISES["01-etf-angle"].solution()

# %% [markdown]
# Drag the figures to rotate them: for K = 3 the three arrows lie flat in a plane; for K = 4 they
# point to the corners of a regular tetrahedron. These vectors live in K - 1 <= 3 dimensions, so
# the 3D view is exact (lengths and angles preserved), as each subtitle says.

# %%
for k in (3, 4):
    plots.simplex_figure(
        geometry.simplex_etf(k, k - 1), show_etf=False, title=f"Simplex ETF, K = {k}"
    ).show()

# %% [markdown]
# ## The unconstrained-features model
#
# A deep network can place its last-layer features almost anywhere, so the
# [UFM](../docs/glossary.md#ufm) treats them as free variables $h_i$ and trains them together
# with the classifier. Its objective (`ufm.simulate`) is cross-entropy plus weight decay on both:
#
# $$
# \min_{W,\,H}\;\; \frac1N \sum_{i=1}^{N} \mathrm{CE}(W h_i,\, y_i)
# \;+\; \frac{\lambda_W}{2} \|W\|_F^2 \;+\; \frac{\lambda_H}{2}\, R(H),
# $$
#
# and the feature penalty $R$ comes in two forms:
#
# - **per class**, $R(H) = \frac1K \sum_k \frac{1}{n_k} \sum_{i:\,y_i = k} \|h_i\|^2$: every
#   class's mean squared feature norm counts the same, however few its samples. This is the
#   Lagrangian form of the [layer-peeled model](../docs/glossary.md#layer-peeled-model) of Fang
#   et al. (2021), and the package's default (`feature_penalty="class"`).
# - **per sample**, $R(H) = \frac1N \sum_i \|h_i\|^2$: plain weight decay on every feature, so a
#   class weighs $n_k/N$ (`feature_penalty="sample"`). Zhu et al. (2021) and Thrampoulidis et al.
#   (2022) use this weighting, written as a sum $\|H\|_F^2 = \sum_i \|h_i\|^2$, without the $1/N$.
#
# On balanced data ($n_k = N/K$) the two means are the same penalty; under imbalance they are
# not, and notebook 02 shows that the choice decides what happens to the minority classes. What
# the penalty changes on balanced data is only a scale, measured below.
#
# **NC1 is built into this model.** Fix W: each $h_i$ then appears in one loss term and in the
# penalty, a strictly convex function of $h_i$ that is the same for every sample of its class.
# So at every stationary point of the UFM, not only at its optimum, all features of a class
# coincide: NC1 = 0 exactly. The simulator therefore trains the K class means, and draws each
# sample as its class mean plus a deviation that follows the per-sample gradient *linearised*
# around the mean, a contraction applied at every step (the `ufm` module's docstring has the
# details). The dots in the figures below are these linearised deviations: watching them fall
# onto their means shows that contraction, not a discovery about networks. The real network at
# the end of this notebook is where NC1 has to be earned.
#
# We train the UFM on K classes of `SAMPLES_PER_CLASS` samples each with the per-class penalty,
# keep the per-sample features, and record the metrics along the way. Before running it, a
# prediction.

# %%
predictions.predict("01-predict-order")

# %%
### BEGIN SOLUTION 01-predict-order
PREDICTION = "A"
### END SOLUTION

# %%
counts = [SAMPLES_PER_CLASS] * NUM_CLASSES
options = {
    "weight_decay_w": WEIGHT_DECAY,
    "weight_decay_h": WEIGHT_DECAY,
    "seed": SEED,
    "return_features": True,
}
result = ufm.simulate(counts, steps=STEPS, record_every=RECORD_EVERY, **options)
snapshots = [ufm.simulate(counts, steps=s, **options) for s in SNAPSHOT_STEPS]
first, final = result.history[0], result.final
print(f"counts {counts}: {result.steps_run} steps, converged: {result.converged}")
for run in (*snapshots, result):
    f = run.final
    print(
        f"step {f['step']:4d}: NC1 {f['nc1']:.2e}, ETF distance of the means "
        f"{f['etf_distance_means']:.2e}, of the classifier {f['etf_distance_weights']:.2e}"
    )

# %%
predictions.reveal("01-predict-order", PREDICTION, measured=result)

# %% [markdown]
# The printout shows the order of events: NC1 collapses within a few dozen steps, while the
# means and the classifier are still far from an ETF; the ETF distances only vanish later. In
# this model that order is the contraction described above: the deviations shrink by a factor
# at every step, while arranging the means into an ETF is a slow, global rearrangement of all
# the classes. The curves below show the metrics over all the gradient steps: NC1 (log scale)
# falls by many orders of magnitude; the ETF distances of the means and of the classifier, and
# the self-duality gap, fall to zero; MC_W and MC_H settle on the dotted line $-1/(K-1)$: with
# balanced data no group of classes is squeezed.

# %%
plots.metric_curves(result.history, title="UFM on balanced data").show()

# %%
a, b = ufm.balanced_norms(NUM_CLASSES, WEIGHT_DECAY, WEIGHT_DECAY)
# NC4 needs the individual features: measure it on them with metrics.nc_metrics
nc4 = metrics.nc_metrics(result.features, result.labels, result.weight).ncc_agreement
print(f"NC1                      {final['nc1']:.2e}")
print(f"ETF distance, means      {final['etf_distance_means']:.2e}")
print(f"ETF distance, classifier {final['etf_distance_weights']:.2e}")
print(f"self-duality (NC3)       {final['self_duality']:.2e}")
print(f"NC4 agreement            {nc4:.3f}")
print(f"MC_W, MC_H               {final['mc_weights']:.6f}, {final['mc_means']:.6f}")
print(f"-1/(K-1)                 {-1 / (NUM_CLASSES - 1):.6f}")
print(f"classifier norms {[round(x, 5) for x in final['classifier_norms']]}, closed form {a:.5f}")
print(f"mean norms       {[round(x, 5) for x in final['mean_norms']]}, closed form {b:.5f}")

# %% [markdown]
# All four properties hold to numerical precision: NC1, both ETF distances and the
# self-duality gap are printed above as (nearly) zero, the classifier agrees with the
# nearest-class-mean rule on every sample, and MC_W = MC_H = $-1/(K-1)$. The norms match the
# closed form of `ufm.balanced_norms` too.
#
# ### Which lengths? It depends on the penalty
#
# With equal weight decays the class means above come out $\sqrt K$ times longer than the
# classifier rows. That is a property of how the penalty is written, not of neural collapse. At
# the optimum, for a given product of lengths, the penalty is smallest when
# $\lambda_W K \|w\|^2 = \lambda_H c \|m\|^2$, where $c \|m\|^2$ is the value of $R$ when every
# feature has length $\|m\|$: $c = 1$ for both means above, $c = N$ for the sum $\|H\|_F^2$.
# So the ratio is
# $\sqrt{K \lambda_W / \lambda_H} = \sqrt K$ under either mean, and
# $\sqrt{\lambda_W / (n \lambda_H)} = 1/\sqrt n$ under the sum, n samples per class (Zhu et al.'s
# Theorem 3.1: $h_{k,i} = \sqrt{\lambda_W / (n \lambda_H)}\, w_k$ at every global minimiser). The
# UFM, run with each penalty at the same $\lambda$:

# %%
penalties = lessons_ufm.norm_ratios_by_penalty(
    NUM_CLASSES, SAMPLES_PER_CLASS, WEIGHT_DECAY, seed=SEED
)
print(f"K = {NUM_CLASSES}, n = {SAMPLES_PER_CLASS} per class, lambda_W = lambda_H = {WEIGHT_DECAY}")
for row in penalties:
    print(
        f"{row['name']:60s} R = {row['formula']:42s} mean / row length {row['ratio']:.4f} "
        f"(closed form {row['closed_form']:.4f}; ETF distance {row['etf_distance_means']:.0e}, "
        f"converged: {row['converged']})"
    )
print(f"sqrt(K) = {NUM_CLASSES**0.5:.4f}, 1/sqrt(n) = {SAMPLES_PER_CLASS**-0.5:.4f}")

# %% [markdown]
# The measured ratios match their closed forms: $\sqrt K$ with the per-class penalty, and with the
# per-sample mean, which is the same penalty on balanced data; $1/\sqrt n$ with the per-sample
# sum, where the means are the *shorter* arrows. All three reach the same simplex ETF (ETF
# distances near zero). So "the means are $\sqrt K$ times longer than the classifier rows" holds
# for this package's normalisation, the layer-peeled model's, and not for the penalty as Zhu et
# al. and Thrampoulidis et al. write it: when comparing norms with a paper, check its penalty
# first.
#
# ## Seeing it in 3D
#
# Three snapshots, at the steps in `SNAPSHOT_STEPS` and at the end. Arrows ending in a circle
# are the centred class means, arrows ending in a diamond the classifier rows, the faint dots
# the individual features (class mean plus linearised deviation), and the grey dashed lines the
# simplex ETF nearest to the classifier.
#
# The UFM's features have d = K = 4 dimensions here, so a 3D view is exact only when everything
# it draws lies in a 3-dimensional subspace; each figure's subtitle says which. Where it says
# "4-D arrows seen from their 3 widest directions", the view is a projection: lengths and angles
# are distorted, and the share of the arrows' squared length it keeps is given. The printout
# below says which snapshots are exact. At the end the centred means and the classifier rows lie
# in the 3-D span of the ETF and the view is exact; early on, the random classifier rows use all
# four dimensions.
#
# After one step the dots are a diffuse cloud and the arrows point in unrelated directions; a
# few dozen steps later each class's dots have gathered at its mean (NC1, by the contraction)
# but the arrows are not yet a regular shape; at the end the means form a regular tetrahedron
# (NC2) on top of the grey reference, and every classifier arrow lies along its class's mean
# (NC3).

# %%
views_exact = []
for run in (*snapshots, result):
    when = "at the end" if run is result else f"after {plural(run.steps_run, 'step')}"
    view = geometry.project_to_3d(run.means - run.means.mean(dim=0), run.weight)
    views_exact.append(view.exact)
    shown = (
        "exact"
        if view.exact
        else f"a projection ({1 - view.captured:.1e} of the squared length is outside it)"
    )
    print(f"{when}: the 3D view of the arrows is {shown}")
    plots.simplex_figure(
        run.means,
        run.weight,
        features=run.features,
        labels=run.labels,
        title=f"Balanced UFM, K = {NUM_CLASSES}, {when}",
    ).show()

# %% [markdown]
# The cosine matrices tell the same story in numbers: the means and the classifier rows each
# have -1/(K-1) off the diagonal, and the means-vs-classifiers panel has 1 on its diagonal
# (each mean points along its own classifier).

# %%
plots.gram_heatmap(result.means, result.weight).show()

# %% [markdown]
# ## Which global mean? The centring convention
#
# NC1, NC2, NC3 and MC_H all use *centred* class means, $\mu_k - \mu_G$, and there are two
# global means in use:
#
# - the **class-balanced** mean $\mu_G = \frac1K \sum_k \mu_k$, every class counted once (this
#   package's default, `global_mean="balanced"`);
# - the **sample-weighted** mean $\mu_G = \frac1N \sum_k n_k \mu_k$, the mean of all training
#   features (Papyan et al. 2020's convention, `global_mean="weighted"`).
#
# On balanced data they are the same point, so nothing above depended on the choice. Under
# imbalance they are not. Here is a preview of notebook 02: the UFM with cross-entropy on two
# classes of `CENTRING_N_MAX` samples and two of `CENTRING_N_MAX / CENTRING_RATIO`, its means and
# classifier measured both ways. The menu switches the convention (without a running kernel,
# both are printed).

# %%
centring_counts = data.long_tail_counts(CENTRING_N_MAX, 4, CENTRING_RATIO, profile="step")
centring_run = ufm.simulate(
    centring_counts, weight_decay_w=WEIGHT_DECAY, weight_decay_h=WEIGHT_DECAY, seed=SEED
)
centring_minority = centring_run.final["minority"]
print(f"counts {centring_counts}, minority classes {centring_minority}")
lessons_ufm.centring_toggle(
    centring_counts, centring_run.means, centring_run.weight, centring_minority
)

# %%
centring = lessons_ufm.centring_views(
    centring_counts, centring_run.means, centring_run.weight, centring_minority
)
print(lessons_ufm.centring_text(centring))

# %% [markdown]
# Same run, same means, two answers: centred on the sample-weighted mean, MC_H and the
# self-duality gap are both much larger than on the class-balanced one (printed above). The
# sample-weighted mean sits close to the long, numerous majority means; subtracting it moves
# both short minority means the same way, which makes them look squeezed together and away from
# their classifier rows. MC_W needs no centring and does not change.
#
# **The convention of this course**: every centred number in notebooks 01-05, the report and
# the website (NC1, NC2 of the means, NC3, MC_H) uses the class-balanced global mean unless it
# says otherwise. Before comparing with a paper that centres on the mean of all features,
# recompute with `global_mean="weighted"` (exercise 03-mc-h does it by hand).
#
# ## Collapse in a real network
#
# Is neural collapse only a property of a toy model? Here is a real one: a small 1-D CNN
# trained with cross-entropy (SGD with momentum, a cosine learning rate, weight decay
# `CNN_WEIGHT_DECAY`) on balanced MNIST-1D (Greydanus 2020), ten digits of
# `CNN_SIGNALS_PER_CLASS` training signals each. At every second epoch the training loop measures
# the NC metrics of the training set's last-layer features.

# %%
mnist = data.load_dataset(
    "mnist1d", imbalance_ratio=1, profile="step", n_max=CNN_SIGNALS_PER_CLASS, seed=SEED
)
cnn = experiments.run_method(
    "ce",
    mnist,
    epochs=CNN_EPOCHS,
    weight_decay=CNN_WEIGHT_DECAY,
    metrics_every=2,
    seed=SEED,
    device=DEVICE,
)
start, end = cnn.evaluated[0], cnn.final
print(f"training counts per digit: {mnist.counts}")
print(
    f"training accuracy {end.train_acc:.1%}, test accuracy {end.accuracy:.1%} "
    f"after {plural(cnn.epochs, 'epoch')}"
)
ufm_column = {**final, "ncc_agreement": nc4}
print(
    lessons_ufm.metric_table(
        {
            "UFM (end)": ufm_column,
            f"CNN (epoch {start.epoch})": start.nc,
            f"CNN (epoch {end.epoch})": end.nc,
        }
    )
)
print(f"ETF value of MC_W and MC_H: {-1 / (mnist.num_classes - 1):+.3f}")

# %%
plots.metric_curves(
    [{"epoch": r.epoch, **r.nc} for r in cnn.evaluated], title="1-D CNN on balanced MNIST-1D"
).show()

# %% [markdown]
# Read the three columns. Over training, the network moves the way neural collapse says: NC1
# falls by more than a factor of ten from the first measured epoch to the last, the self-duality
# gap shrinks, and the classifier agrees with the nearest-class-mean rule on more and more
# samples (NC4). But it is far from the UFM's exact values: the ETF distances and the
# self-duality gap stay well above zero, and NC1, though falling, is nowhere near the UFM's. (The
# "minority" MC_W and MC_H here are just the last five digits; with balanced data they have no
# special role.) Papyan et al. trained for hundreds of epochs past zero training error to see the
# shape form; a minute or two of training gets a network onto that road, not to its end. The UFM
# describes where the road leads.

# %% [markdown]
# ## Key takeaways
#
# - Neural collapse is four properties: features on their class means (NC1), centred means in a
#   simplex ETF (NC2), classifier rows along the means (NC3), nearest-class-mean decisions
#   (NC4). A simplex ETF has pairwise cosine $-1/(K-1)$ and spans K - 1 dimensions.
# - The UFM makes the features free variables. NC1 holds at every one of its stationary points,
#   so its fast fall in the simulator is built in; on balanced data the optimum is a simplex ETF.
# - The feature penalty is a modelling choice: per class (the layer-peeled model) or per
#   sample, written as a mean or a sum. On balanced data it only sets the lengths (means $\sqrt K$
#   times the classifier rows here, $1/\sqrt n$ times with the sum); under imbalance it decides
#   more (notebook 02).
# - Centred metrics depend on the global mean. This course uses the class-balanced one
#   everywhere; Papyan et al. use the sample-weighted one. Under imbalance the two can differ a
#   lot.
# - A real network trained for a minute moves towards collapse on every measure but stays far
#   from the exact shape.
#
# ## Questionnaire
#
# Answer in place: pick or type an answer and press Check. Without widgets, answer each
# question with `quiz.ask("01-q1", answer)`, the answer a letter or a number. Further
# research tasks follow the questions.

# %%
quiz.questionnaire("01")

# %% [markdown]
# ## References
#
# - Papyan, Han and Donoho (2020), Prevalence of neural collapse during the terminal phase of
#   deep learning training. PNAS. https://doi.org/10.1073/pnas.2015509117
# - Fang, He, Long and Su (2021), Exploring deep neural networks via layer-peeled model:
#   minority collapse in imbalanced training. PNAS. https://doi.org/10.1073/pnas.2103091118
# - Zhu, Ding, Zhou, Li, You, Sulam and Qu (2021), A geometric analysis of neural collapse with
#   unconstrained features. NeurIPS. https://arxiv.org/abs/2105.02375
# - Thrampoulidis, Kini, Vakilian and Behnia (2022), Imbalance trouble: revisiting
#   neural-collapse geometry. NeurIPS. https://arxiv.org/abs/2208.05512
# - Greydanus (2020), Scaling down deep learning (MNIST-1D). https://arxiv.org/abs/2011.14439
# - Kothapalli (2023), Neural collapse: a review on modelling principles and generalization.
#   TMLR. https://arxiv.org/abs/2206.04041
#
# Next, notebook 02 breaks the balance: with fewer samples in some classes, the tidy shape
# deforms.

# %% tags=["for-tests"]
summary = {
    "num_classes": NUM_CLASSES,
    "counts": counts,
    "weight_decay": WEIGHT_DECAY,
    "etf_cosines": {str(k): v for k, v in etf_cosines.items()},
    "etf_angles": {str(k): v for k, v in etf_angles.items()},
    "steps_run": result.steps_run,
    "converged": result.converged,
    "nc1_initial": first["nc1"],
    "snapshots": [
        {key: run.final[key] for key in ("step", "nc1", "etf_distance_means")} for run in snapshots
    ],
    "views_exact": views_exact,
    "final": {
        key: final[key]
        for key in (
            "nc1",
            "etf_distance_means",
            "etf_distance_weights",
            "self_duality",
            "mc_weights",
            "mc_means",
            "classifier_norms",
            "mean_norms",
        )
    },
    "ncc_agreement": nc4,
    "closed_form_norms": {"classifier": a, "means": b},
    "penalties": penalties,
    "samples_per_class": SAMPLES_PER_CLASS,
    "centring": {"counts": centring_counts, **centring},
    "cnn": {
        "counts": mnist.counts,
        "epochs": cnn.epochs,
        "train_acc": end.train_acc,
        "accuracy": end.accuracy,
        "start": {"epoch": start.epoch, **start.nc},
        "end": {"epoch": end.epoch, **end.nc},
    },
    "verdicts": feedback.verdicts(),
}
Path(RESULTS_PATH).parent.mkdir(parents=True, exist_ok=True)
Path(RESULTS_PATH).write_text(json.dumps(summary, indent=2))
print(json.dumps({k: summary[k] for k in ("steps_run", "nc1_initial", "final")}, indent=1))
