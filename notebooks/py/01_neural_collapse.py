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
# `allnc_edu.metrics` computes, draws the simplex ETF in 3D for K = 3 and K = 4 classes, and
# then watches the *unconstrained-features model* (UFM), a model in which the features are free
# variables, reach that ETF on balanced data in a fraction of a second.

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
RESULTS_PATH = "results/01_neural_collapse.json"
NUM_CLASSES = 4  # K for the UFM run (up to 4 gives an exact 3D view)
SAMPLES_PER_CLASS = 300  # n, the same for every class (balanced data)
WEIGHT_DECAY = 0.005  # lambda_W and lambda_H (both)
STEPS = 4000  # at most; the run stops once converged
SNAPSHOT_STEPS = [1, 40]  # 3D snapshots early in training, for comparison
RECORD_EVERY = 5  # record the metrics every this many steps

# %%
if SMOKE:
    SAMPLES_PER_CLASS = 30

# %%
import json
from pathlib import Path

from allnc_edu import geometry, metrics, plots, ufm
from allnc_edu.fmt import plural

# %% [markdown]
# ## The four properties
#
# Notation: K classes, features $h_i \in \mathbb{R}^d$ with labels $y_i$, class means
# $\mu_k$, the class-balanced global mean $\mu_G = \frac1K \sum_k \mu_k$, centred means
# $\bar\mu_k = \mu_k - \mu_G$ stacked as the rows of $\bar M$ (K × d), and the classifier $W$
# (K × d, one row $w_k$ per class).
#
# - **NC1, variability collapse.** Every feature sits on its class mean. With the within-class
#   and between-class covariances
#   $\Sigma_W = \frac1N \sum_i (h_i - \mu_{y_i})(h_i - \mu_{y_i})^\top$ and
#   $\Sigma_B = \frac1K \sum_k \bar\mu_k \bar\mu_k^\top$, the metric is
#   $\mathrm{NC1} = \frac1K \operatorname{Tr}(\Sigma_W \Sigma_B^{+})$, which is 0 at collapse.
# - **NC2, simplex ETF.** The centred means have equal norms and pairwise cosine
#   $-1/(K-1)$, the most negative value K vectors can share. Scale and rotation do not matter,
#   so the metric compares normalised Gram matrices:
#   $\left\| \frac{\bar M \bar M^\top}{\|\bar M \bar M^\top\|_F} -
#   \frac{I - J/K}{\sqrt{K-1}} \right\|_F$ (J the all-ones matrix), 0 at an ETF. The same
#   distance is reported for the rows of W.
# - **NC3, self-duality.** The classifier is the means, up to scale:
#   $\left\| \frac{W}{\|W\|_F} - \frac{\bar M}{\|\bar M\|_F} \right\|_F = 0$.
# - **NC4, nearest class centre.** The classifier's decision $\arg\max_k w_k^\top h$ equals
#   the nearest class mean $\arg\min_k \|h - \mu_k\|$ on every sample (agreement 1).
#
# Notebook 02 adds two more numbers for imbalanced data, **MC_W** and **MC_H**: the average
# pairwise cosine among the minority classes' classifier rows and centred means. At an ETF both
# equal $-1/(K-1)$.

# %% [markdown]
# ## The simplex ETF
#
# `geometry.simplex_etf(K, K - 1)` returns K unit vectors in K-1 dimensions with pairwise
# cosine $-1/(K-1)$: for K = 3 an equilateral triangle in a plane (120° apart), for K = 4 a
# regular tetrahedron (about 109.47° apart). Here are their cosine matrices and angles.

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
# Drag the figures to rotate them: for K = 3 the three arrows lie flat in a plane; for K = 4 they
# point to the corners of a regular tetrahedron. The view is exact (lengths and angles
# preserved), as the subtitle says.

# %%
for k in (3, 4):
    plots.simplex_figure(
        geometry.simplex_etf(k, k - 1), show_etf=False, title=f"Simplex ETF, K = {k}"
    ).show()

# %% [markdown]
# ## The unconstrained-features model reaches the ETF
#
# A deep network can place its penultimate features almost anywhere, so the UFM treats them
# as free variables $h_i$ and trains them together with W, minimising cross-entropy plus weight
# decay on both (`ufm.simulate`; its docstring gives the objective). On balanced data its
# optimum is a simplex ETF with closed-form norms (`ufm.balanced_norms`). We train it on
# K classes of `SAMPLES_PER_CLASS` samples each, keep the per-sample features, and record the
# metrics along the way.

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

# %% [markdown]
# The printout already shows the order of events: NC1 collapses within a few dozen steps,
# while the means and the classifier are still far from an ETF; the ETF distances only vanish
# later. The curves below show the metrics over all the gradient steps. NC1 (log scale) falls by
# many orders of magnitude: the features collapse onto their means. The ETF distances of the
# means and of the classifier, and the self-duality gap, fall to zero. MC_W and MC_H settle on
# the dotted line $-1/(K-1)$: with balanced data no group of classes is squeezed.

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
print(f"mean norm / classifier norm {b / a:.5f}, sqrt(K) = {NUM_CLASSES**0.5:.5f}")

# %% [markdown]
# All four properties hold to numerical precision: NC1, both ETF distances and the
# self-duality gap are printed above as (nearly) zero, the classifier agrees with the
# nearest-class-mean rule on every sample, and MC_W = MC_H = $-1/(K-1)$. The norms match the
# closed form too: with equal weight decays, the means are $\sqrt K$ times longer than the
# classifier rows.
#
# ## Seeing it in 3D
#
# Three snapshots, at the steps in `SNAPSHOT_STEPS` and at the end. Arrows ending in a circle
# are the centred class means, arrows ending in a diamond the classifier rows, the faint dots
# the individual features, and the grey dashed lines the simplex ETF nearest to the classifier.
# The view is exact (K <= 4 vectors fit in 3D) and can be turned with the mouse. After
# one step the dots are a diffuse cloud and the arrows point in unrelated directions; a few
# dozen steps later each class's dots have gathered at its mean (NC1) but the arrows are not yet
# a regular shape; at the end the means form a regular tetrahedron (NC2) on top of the grey
# reference, and every classifier arrow lies along its class's mean (NC3).

# %%
for run in (*snapshots, result):
    when = "at the end" if run is result else f"after {plural(run.steps_run, 'step')}"
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
# Notebook 02 breaks the balance: with fewer samples in some classes, this tidy shape deforms.
#
# The key numbers of this run, for the tests:

# %%
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
}
Path(RESULTS_PATH).parent.mkdir(parents=True, exist_ok=True)
Path(RESULTS_PATH).write_text(json.dumps(summary, indent=2))
print(json.dumps({k: summary[k] for k in ("steps_run", "nc1_initial", "final")}, indent=1))
