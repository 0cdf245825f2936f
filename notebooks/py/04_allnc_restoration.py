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
# Notebook 03 trained a small CNN on long-tailed MNIST-1D: cross-entropy squeezed the minority
# classifiers and the minority class means, and fixing the classifier to a simplex ETF held the
# classifier but not the means. This notebook takes the remedy that attacks all of it at once,
# **AllNC** (Zhang et al. 2024), explains its three parts, trains it beside a strong one-line
# baseline, takes it apart one component at a time, and watches its geometry form.
#
# **Learning objectives.** After this notebook you can
#
# - write down logit adjustment and AllNC's three components (HyCon, P2P, GBBN): each one's
#   formula, what it is for and which neural-collapse property it targets;
# - compute logit adjustment, GBBN's schedule alpha(t) and the P2P loss yourself, and check
#   them against the library;
# - read an ablation table, mean ± std over seeds, and say what each component adds;
# - compare methods fairly: the same data, the same epochs, and the number of samples each saw.
#
# **Prerequisites.** Notebooks 01-03: the
# [neural-collapse](../docs/glossary.md#neural-collapse) properties NC1-NC3, the
# [simplex ETF](../docs/glossary.md#simplex-etf), minority collapse and its scores
# [MC_W](../docs/glossary.md#mc_w) and [MC_H](../docs/glossary.md#mc_h); cross-entropy and SGD
# in PyTorch.
#
# **Time.** About an hour with the exercises. The cells run for about two minutes on an idle
# 2-core CPU, nearly all of it in the one cell that trains the sixteen runs.
#
# **A reconstruction.** AllNC here is a documented reconstruction of the paper's method, not
# the authors' code: the paper's exact equations were not available, so each component below
# is our reading of what the paper says, and every reconstructed choice is a named option of
# `allnc_edu.allnc.AllNCConfig` ([docs/method.md](../docs/method.md)). Numbers below are ours.

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
RESULTS_PATH = "results/04_allnc_restoration.json"
IMBALANCE_RATIO = 100  # n_max / n_min of the step profile (as in notebook 03)
N_MAX = None  # training signals in each majority class (None: MNIST-1D's default, 500)
SEEDS = [0, 1]  # every run is repeated for each seed; tables show mean ± std
EPOCHS = 20  # training epochs of every run (notebook 03 used 60)
WEIGHT_DECAY = 0.01  # SGD weight decay (a larger one reaches the collapse regime sooner)
AUGMENT = True  # shift training signals by up to 4 positions, every method (False: no augmentation)
RUNS = ["ce", "la", "etf-dr", "allnc", "allnc-no-hycon", "allnc-no-p2p", "allnc-no-gbbn", "gbbn"]
METRICS_EVERY = 4  # measure NC metrics and keep the geometry every this many epochs
SEED = 0  # the run (one of SEEDS) shown in 3D and on the epoch slider
STUDY_DIR = "../docs/studies"  # the study records read in the part for researchers

# %%
if SMOKE:  # fewer runs (the CI check); the same budget per run
    RUNS = ["ce", "la", "allnc"]
    METRICS_EVERY = 10

# %%
import json
from pathlib import Path

import plotly.graph_objects as go
import torch
from IPython.display import HTML, display

from allnc_edu import feedback, predictions, quiz, run_figures, study
from allnc_edu.allnc import AllNCConfig, gbbn_alpha
from allnc_edu.data import load_dataset
from allnc_edu.exercises import EXERCISES
from allnc_edu.methods import VARIANTS

ETF_COSINE = -1 / (10 - 1)
data = load_dataset("mnist1d", imbalance_ratio=IMBALANCE_RATIO, profile="step", n_max=N_MAX)
print("training counts per class (seed 0):", data.counts)

# %% [markdown]
# ## The baseline to beat: logit adjustment
#
# Under a long tail, cross-entropy learns the training prior: with 500 signals of a majority
# digit for every 5 of a minority one, a logit has to be much larger for a minority digit to
# win. [Logit adjustment](../docs/glossary.md#logit-adjustment) (Menon et al. 2021) builds the
# prior into the loss instead. With $\pi_k = n_k / N$ the share of class $k$ in the training
# set and $z$ the logits, training minimises
#
# $$\mathcal{L}_{\text{LA}}(z, y) = \text{CE}\big(z + \tau \log \pi,\; y\big), \qquad \tau = 1,$$
#
# and predicts with the raw logits $z$. Adding $\log \pi_k$ gives every majority class a head
# start during training, so the network has to push a minority class's raw logit higher to
# win; at test time, without the head start, the minority classes win more often. It is one
# line of code and a strong baseline: every long-tail method should be compared with it.
#
# **Exercise 04-logit-adjustment.** Compute the logit-adjusted loss of a small batch.

# %%
logits = EXERCISES["04-logit-adjustment"].given["logits"]  # (8, 5)
targets = EXERCISES["04-logit-adjustment"].given["targets"]  # (8,)
counts = EXERCISES["04-logit-adjustment"].given["counts"]  # 5 training counts
### BEGIN SOLUTION
import torch.nn.functional as F

prior = torch.tensor(counts, dtype=torch.float64)
answer = F.cross_entropy(logits + (prior / prior.sum()).log(), targets)
### END SOLUTION
EXERCISES["04-logit-adjustment"].check(answer)
# EXERCISES["04-logit-adjustment"].hint()   # EXERCISES["04-logit-adjustment"].solution()

# %% [markdown]
# Logit adjustment changes the decisions, not the geometry it was asked to restore: nothing in
# it tells the minority classifier rows or class means to spread out. AllNC asks for the
# geometry directly.
#
# ## AllNC's three components
#
# Notation (as in notebooks 01-03): $K$ classes, $n_k$ training samples of class $k$,
# features $z$ (the penultimate layer), classifier rows $w_k$, class means $\mu_k$, their
# class-balanced average $\mu_G = \frac1K\sum_k \mu_k$. A tilde means centred and normalised,
# $\tilde\mu_k = (\mu_k - \mu_G)/\lVert\mu_k - \mu_G\rVert$, a hat normalised,
# $\hat w_k = w_k/\lVert w_k\rVert$, and $G^\star$ is the ETF's Gram matrix: 1 on the
# diagonal, $-1/(K-1)$ off it.
#
# ### HyCon, the hybrid contrastive loss (targets NC1)
#
# $$\mathcal{L}_{\text{HyCon}}(i) = -\log \frac{\exp(p_i^\top c_{y_i}/\tau)}
#   {\sum_{k=1}^{K} \exp(p_i^\top c_k/\tau) + \sum_{j:\, y_j \neq y_i} \exp(p_i^\top p_j/\tau)}$$
#
# - **What it is.** In [HyCon](../docs/glossary.md#hycon), $p_i$ is sample $i$'s feature
#   passed through a small projection head and normalised; $c_k$ is class $k$'s normalised mean,
#   kept as a running average over training (the class-mean bank), so that a class absent from
#   the batch still counts; $\tau = 0.1$.
# - **Intuition:** pull every sample towards its own class mean and away from the other class
#   means and from the other classes' samples. The positive is a class mean, the negatives are
#   class means and single samples: hence "hybrid".
# - **Targets** [NC1](../docs/glossary.md#nc1): each class collapsing onto its mean.
# - **Reconstruction:** the paper says HyCon contrasts "the anchor point and the class mean";
#   the exact negatives, the temperature and the averaging (each class weighs the same) are our
#   choices.
#
# ### P2P, the peer-to-peer loss (targets NC2 and NC3)
#
# $$\mathcal{L}_{\text{P2P}} = \frac{1}{K^2}\,\big\lVert \tilde M \hat W^\top - G^\star
#   \big\rVert_F^2$$
#
# - **What it is.** In [P2P](../docs/glossary.md#p2p), $\tilde M$ is the $K \times d$ matrix of
#   rows $\tilde\mu_k$ and $\hat W$ that of rows $\hat w_k$; entry $(j, k)$ of
#   $\tilde M \hat W^\top$ is the cosine between class $j$'s centred mean and class $k$'s
#   classifier row.
# - **Intuition:** the diagonal pulls each mean onto its own classifier row
#   ([self-duality](../docs/glossary.md#self-duality)); the off-diagonal drives each mean's
#   cosine with every other class's classifier to $-1/(K-1)$, pulling or pushing, whichever
#   way it is off. Zero loss means that means and classifiers sit on one simplex ETF together.
# - **Targets** [NC2](../docs/glossary.md#nc2) (the ETF) and [NC3](../docs/glossary.md#nc3)
#   (self-duality) at once, for the minority classes as much as the majority ones: MC_W and
#   MC_H both at $-1/(K-1)$.
# - **Reconstruction:** the "cross" form above is our reading of "aligning class means and
#   classifier vectors peer to peer"; the means inside it come from the class-mean bank, and
#   comparing means with means and classifiers with classifiers instead is the option
#   `p2p_mode="separate"`.
#
# ### GBBN, the generalised bilateral-branch network (the schedule)
#
# [GBBN](../docs/glossary.md#gbbn) keeps the layout of [BBN](../docs/glossary.md#bbn) (Zhou et
# al. 2020): one backbone, two heads, two batches every step.
#
# ```text
#  ordinary batch         ─┐                 ┌─▶ conventional head W_c ─▶ CE × alpha(t)
#  (every sample alike)    ├─▶ backbone f ───┤
#  re-balancing batch     ─┘  (two passes)   └─▶ re-balancing head W_r ─▶ LA × (1 - alpha(t))
#  (class k: weight n_k^-q)       │
#                                 └─▶ features z ─▶ HyCon × lambda_h
#                                     class means with W_r ─▶ P2P × lambda_p
# ```
#
# $$\mathcal{L} = \alpha(t)\,\mathcal{L}_{\text{conv}} + \big(1-\alpha(t)\big)\,
#   \mathcal{L}_{\text{rebal}} + \lambda_h\,\mathcal{L}_{\text{HyCon}} + \lambda_p\,
#   \mathcal{L}_{\text{P2P}}, \qquad \alpha(t) = 1 - (t/T)^{\gamma}$$
#
# - $t/T$ is the fraction of training done; $\alpha$ falls from 1 to 0, moving the loss from
#   the conventional branch (learning features from the data as it is) to the re-balancing
#   branch (learning a classifier that treats the classes alike). The exponent $\gamma$ sets
#   when: BBN's parabola is $\gamma = 2$; a smaller $\gamma$ hands over sooner.
# - $q$ sets how the re-balancing batch is drawn: class $k$'s samples with weight $n_k^{-q}$,
#   so $q = 1$ gives class-balanced batches and $q = 0$ ordinary ones. Its loss is logit
#   adjustment by the class shares those batches actually have
#   ($\pi_k \propto n_k^{1-q}$), so whatever imbalance the sampling leaves is corrected once.
# - $\lambda_h$ and $\lambda_p$ weigh HyCon and P2P against the two cross-entropy terms.
# - **BatchNorm in separate passes:** the two batches go through the shared backbone one after
#   the other, so BatchNorm normalises each with its own statistics (as BBN's branches do),
#   rather than mixing them in one pass. At test time the re-balancing head $W_r$ predicts,
#   and P2P aligns the class means with it.
#
# - **Intuition:** learn good features first, then a fair classifier, in one run.
# - **Targets** no NC property directly: GBBN is what re-balances the classes (without it
#   nothing counters the 100-to-1 prior); it shapes MC_W through the classifier $W_r$ it
#   trains.
# - **Reconstruction:** the paper generalises BBN's branches and schedule; the exponent
#   $\gamma$ as the generalisation, the sampling weight $q$ and the loss of the re-balancing
#   branch are our choices.
#
# The weight $\alpha(t)$ of the conventional branch over training, for three exponents:

# %%
progress = [i / 100 for i in range(101)]
schedule = go.Figure(
    [
        go.Scatter(x=progress, y=[gbbn_alpha(p, g) for p in progress], name=name)
        for g, name in (
            (0.5, "gamma = 0.5 (this notebook)"),
            (1, "gamma = 1"),
            (2, "gamma = 2 (BBN)"),
        )
    ]
)
schedule.update_layout(
    title="GBBN's schedule: the conventional branch's weight alpha(t) = 1 - (t/T)^gamma",
    xaxis_title="t / T (fraction of training done)",
    yaxis_title="alpha(t)",
    height=340,
)
schedule.show()

# %% [markdown]
# **Exercise 04-gbbn-alpha.** Compute BBN's schedule yourself: $\alpha(t)$ for $\gamma = 2$ and
# $T = 20$ epochs, at $t = 0, 1, \dots, T$ (21 values).

# %%
T = 20  # epochs
t = torch.arange(T + 1)  # 0, 1, ..., T
### BEGIN SOLUTION
answer = 1 - (t / T) ** 2
### END SOLUTION
EXERCISES["04-gbbn-alpha"].check(answer)
# EXERCISES["04-gbbn-alpha"].hint()   # EXERCISES["04-gbbn-alpha"].solution()

# %% [markdown]
# **Exercise 04-p2p.** Write the P2P loss as a function `p2p(means, weight)` of $(K, d)$
# uncentred class means and classifier rows: centre the means on their plain average,
# normalise every row (means and classifier rows), and return
# $\frac{1}{K^2}\lVert \tilde M \hat W^\top - G^\star\rVert_F^2$. The check compares its value
# **and its gradient** with `losses.p2p_loss`, so keep every step in torch.

# %%
### BEGIN SOLUTION 04-p2p
import torch.nn.functional as F


def p2p(means, weight):
    k = means.shape[0]
    m = F.normalize(means - means.mean(dim=0), dim=1)
    w = F.normalize(weight, dim=1)
    target = (torch.eye(k, dtype=means.dtype) - 1 / k) * k / (k - 1)
    return ((m @ w.T - target) ** 2).sum() / k**2


answer = p2p
### END SOLUTION
EXERCISES["04-p2p"].check(answer)
# EXERCISES["04-p2p"].hint()   # EXERCISES["04-p2p"].solution()

# %% [markdown]
# ### The settings used here
#
# The paper's equations were not available, so the weights and the schedule were chosen on a
# validation split held out of the training pool, never on the test set: the re-balancing
# branch draws its batches with q = 0.5 and trains with logit adjustment by their own class
# shares, the GBBN exponent is gamma = 0.5, the weights are lambda_h = 0.1 and lambda_p = 0.1,
# and the two batches go through BatchNorm in separate passes.

# %%
print("AllNC defaults:", AllNCConfig())

# %% [markdown]
# ## The runs
#
# Every method trains the same 1-D CNN on the same data (MNIST-1D, step profile: five digits
# with 500 training signals, five with 5) for the same number of epochs:
#
# - `ce`: plain cross-entropy; `la`: logit adjustment;
# - `etf-dr`: the classifier fixed to a simplex ETF, trained with
#   [dot regression](../docs/glossary.md#dot-regression) (Yang et al. 2022): the
#   classifier-only fix of notebook 03;
# - `allnc`: HyCon + P2P + GBBN; `allnc-no-hycon`, `allnc-no-p2p`, `allnc-no-gbbn`: AllNC with
#   one component removed (without GBBN, one head trained with CE on ordinary batches), and
#   `gbbn`: GBBN alone, neither HyCon nor P2P.
#
# Two things keep the comparison fair. **[Samples seen](../docs/glossary.md#samples-seen):** a
# GBBN step draws two batches, so the runs with GBBN see twice the training samples of CE in
# the same epochs; every table says how many each run saw. **Shifted signals:** every method
# trains on signals moved by a random 0 to 4 positions left or right (zero-filled) each time
# they are drawn, the 1-D version of the random crops every image recipe uses. This matters
# for AllNC more than for any baseline: its re-balancing branch draws each of the five signals
# of a minority digit about ten times as often as an ordinary batch does, and without the
# shifts the network memorises them (set `AUGMENT = False` to see it).
#
# Each run is repeated for every seed in `SEEDS`; each seed draws its own training subset and
# initialisation.
#
# **Predict (04-predict-ablation)** before the training starts: which component, removed,
# will cost AllNC the most minority accuracy?

# %%
predictions.predict("04-predict-ablation")
### BEGIN SOLUTION 04-predict-ablation
PREDICTION = "C"
### END SOLUTION

# %% [markdown]
# This cell trains every run: a few minutes on a CPU.

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
    device=str(DEVICE),
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
# **How to read the table.** Each row is one method, averaged over the seeds (± the standard
# deviation over seeds: two methods whose means differ by less than it are not told apart by
# this run). *Accuracy* is on the balanced test set; *minority acc* on the five minority
# digits. MC_W and MC_H are the mean cosines between the minority classifier rows and between
# the centred minority class means: $-1/9 \approx -0.111$ at a simplex ETF, 1 when squeezed
# into one direction. NC1 is the within-class spread (lower is tighter), the self-duality gap
# the distance between normalised classifier and normalised centred means (0 at NC3).
#
# Now the reveal: which ablation lost the most minority accuracy?

# %%
ablations = ("allnc-no-hycon", "allnc-no-p2p", "allnc-no-gbbn")
measured = {n: summary[n]["minority_accuracy_mean"] for n in ablations if n in summary}
predictions.reveal("04-predict-ablation", PREDICTION, measured=measured)

# %% [markdown]
# ## What the run shows
#
# Each line compares two runs by their mean over the seeds; the verdict is computed from the
# numbers printed beside it, so it says what this run found.


# %%
def compare(label, a, b, key, higher="higher"):
    """Print a one-line comparison of two runs' mean ``key`` with its verdict."""
    x, y = summary[a][f"{key}_mean"], summary[b][f"{key}_mean"]
    verdict = f"{a} {higher}" if x > y else f"{b} {higher}"
    print(f"{label}: {a} {x:.1%} vs {b} {y:.1%} ({verdict})")


compare("AllNC vs LA, accuracy", "allnc", "la", "accuracy")
compare("AllNC vs LA, minority accuracy", "allnc", "la", "minority_accuracy")
compare("AllNC vs CE, minority accuracy", "allnc", "ce", "minority_accuracy")
for name in ("allnc-no-hycon", "allnc-no-p2p", "allnc-no-gbbn", "gbbn"):  # the ablation
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
# - **AllNC is ahead of logit adjustment** on this recipe, overall and on the minority digits
#   (the "AllNC vs LA" lines).
# - **The minority classifiers.** AllNC keeps MC_W close to the ETF value, where logit
#   adjustment leaves the minority classifier rows squeezed (MC_W well above $-1/(K-1)$),
#   although logit adjustment recognises the minority digits far better than CE. Better
#   decisions do not need unsqueezed classifiers; notebook 05 asks how far geometry and
#   accuracy go together.
# - **What each component adds** (the "AllNC vs allnc-no-..." and "AllNC vs gbbn" lines and
#   the reveal above, when the ablations are trained; compare also their NC1, MC_W and MC_H in
#   the table). In the validation study of [docs/method.md](../docs/method.md) (shifted
#   signals, three seeds), AllNC without GBBN lost the minority digits of the step profile
#   (0.0% minority accuracy), while HyCon and P2P added little accuracy there: GBBN alone was
#   3.1 points ahead of full AllNC, within the seed spread. On the exponential profile HyCon
#   added 3.9 points and GBBN alone was 5.4 behind. Whether the geometry losses pay depends on
#   the data.
#
# ## The geometry, in 3D
#
# Diamonds: classifier rows; circles: centred class means; minority classes drawn thick. Left
# to right: cross-entropy, logit adjustment, AllNC (seed `SEED`).

# %%
run_figures.simplex_views({n: trained[n, SEED] for n in ("ce", "la", "allnc")}).show()

# %% [markdown]
# ## Watching the geometry form
#
# Drag the slider through the epochs of the AllNC run: the class means and the classifier rows
# at each recorded epoch (each frame is projected onto its own three main directions, so watch
# the angles between the arrows rather than the orientation of the picture). Below it, all the
# metrics over training.

# %%
allnc_run = trained["allnc", SEED]
run_figures.epoch_slider(allnc_run, title="AllNC").show()
run_figures.run_metric_curves(allnc_run, title=f"AllNC, IR {IMBALANCE_RATIO}").show()

# %% [markdown]
# ## For researchers: the same comparison over three seeds and longer schedules
#
# The package's `study` command trained CE, LA and AllNC at this notebook's settings on the
# step and the exponential profile (seeds 0, 1 and 2, test set), with and without the shifts,
# and CE and LA for twice the epochs ("ce-2x", "la-2x": as many samples seen as AllNC); with the
# shifts also at notebook 03's 60 epochs and weight decay 5e-3. The records and the commands
# that made them are in `docs/studies/`; [docs/results.md](../docs/results.md) reads them in
# full. The cell below reads them (an installed package without `docs/` skips it).

# %%
STUDIES = {  # study name: the file names of its seeds in STUDY_DIR
    "step": "mnist1d-step-ir100-test-aug-seed{s}.json",
    "exp": "mnist1d-exp-ir100-test-aug-seed{s}.json",
    "step, 60 epochs": "mnist1d-step-ir100-test-aug-60ep-seed{s}.json",
    "exp, 60 epochs": "mnist1d-exp-ir100-test-aug-60ep-seed{s}.json",
    "step, no shifts": (
        "mnist1d-step-ir100-test-seed{s}.json",
        "mnist1d-step-ir100-test-2x-seed{s}.json",
    ),
    "exp, no shifts": (
        "mnist1d-exp-ir100-test-seed{s}.json",
        "mnist1d-exp-ir100-test-2x-seed{s}.json",
    ),
}
committed, tables = {}, []
for name, patterns in STUDIES.items():
    patterns = (patterns,) if isinstance(patterns, str) else patterns
    paths = [Path(STUDY_DIR) / p.format(s=s) for p in patterns for s in (0, 1, 2)]
    found = study.read_studies(paths)
    if found is None:
        continue
    committed[name] = found[0]
    seeds = committed[name]["allnc"]["seeds"]
    tables.append(study.study_html(committed[name], caption=f"{name}, test set, seeds {seeds}"))
if committed:
    caption = "AllNC minus LA and minus LA-2X (LA at AllNC's samples seen), percentage points"
    display(HTML(study.gap_html(committed, caption=caption)))
    display(HTML("<details><summary>each study's table</summary>" + "".join(tables) + "</details>"))
else:
    print(f"no study record under {STUDY_DIR} (an installed package has no docs/)")
for profile in ("step", "exp"):  # what the shifts give each method
    plain = committed.get(f"{profile}, no shifts")
    if profile in committed and plain is not None:
        gains = ", ".join(
            f"{m.upper()} {committed[profile][m]['accuracy_mean'] - plain[m]['accuracy_mean']:+.1%}"
            for m in ("la", "la-2x", "allnc")
        )
        print(f"{profile}, accuracy with shifted signals minus without: {gains}")

# %% [markdown]
# What the studies add to this notebook's run, read off the gap table:
#
# - **At 20 epochs with shifted signals ("step", "exp"), AllNC is ahead of logit adjustment**
#   overall and on the minority digits on both profiles: far ahead on the step profile, also
#   when LA sees as many samples ("allnc − la-2x"); on the exponential profile LA-2X comes
#   within the seed spread of it.
# - **Without the shifts AllNC is below both LA and LA-2X**, on both profiles, and the last
#   lines say why: the shifts give AllNC far more accuracy than they give logit adjustment.
#   Unshifted, GBBN's re-balancing branch re-draws the few minority signals until the network
#   memorises them; shifted, every draw is a new view.
# - **At 60 epochs** logit adjustment gains from the shifts too: AllNC stays ahead of it on the
#   step profile but is only level with it on the exponential one (gaps within the seed
#   spread), where LA-2X is ahead of both.
#
# ## Key takeaways
#
# - Logit adjustment, one line ($\text{CE}(z + \log\pi, y)$), is the baseline every long-tail
#   method must beat, and it is strong.
# - AllNC combines three parts: HyCon pulls samples onto their class means (NC1), P2P puts
#   means and classifier rows on one ETF (NC2, NC3), GBBN moves the loss from ordinary to
#   re-balanced batches over training. Here it is a documented reconstruction.
# - GBBN is what re-balances: without it the minority digits are lost. HyCon and P2P restore
#   the geometry; how much accuracy they add depends on the data.
# - Compare methods on the same data and budget, over several seeds, and count the samples
#   each saw; augmentation can decide which method wins.
# - Restored geometry and accuracy are not the same thing: logit adjustment leaves the
#   minority classifiers squeezed and still recognises the minority digits. Notebook 05 ends by
#   asking how far the two go together.
#
# ## Questionnaire
#
# Answer in place (a dropdown or a number, then Check), or without widgets with
# `quiz.ask("04-q1", "A")`.

# %%
quiz.questionnaire("04")

# %% [markdown]
# ## References
#
# - Zhang, Li, Geng, Chen (2024). All-around neural collapse for imbalanced classification.
#   [arXiv:2408.07253](https://arxiv.org/abs/2408.07253)
# - Menon et al. (2021). Long-tail learning via logit adjustment.
#   [arXiv:2007.07314](https://arxiv.org/abs/2007.07314)
# - Zhou et al. (2020). BBN: bilateral-branch network with cumulative learning for long-tailed
#   visual recognition. [arXiv:1912.02413](https://arxiv.org/abs/1912.02413)
# - Yang et al. (2022). Inducing neural collapse in imbalanced learning: do we really need a
#   learnable classifier at the end of deep neural network?
#   [arXiv:2203.09081](https://arxiv.org/abs/2203.09081)
# - Fang et al. (2021). Exploring deep neural networks via layer-peeled model: minority
#   collapse in imbalanced training. [doi:10.1073/pnas.2103091118](https://doi.org/10.1073/pnas.2103091118)
# - Papyan, Han, Donoho (2020). Prevalence of neural collapse during the terminal phase of deep
#   learning training. [doi:10.1073/pnas.2015509117](https://doi.org/10.1073/pnas.2015509117)
# - Cao et al. (2019). Learning imbalanced datasets with label-distribution-aware margin loss.
#   [arXiv:1906.07413](https://arxiv.org/abs/1906.07413)
# - Kang et al. (2020). Decoupling representation and classifier for long-tailed recognition.
#   [arXiv:1910.09217](https://arxiv.org/abs/1910.09217)
# - Greydanus (2020). Scaling down deep learning (MNIST-1D).
#   [arXiv:2011.14439](https://arxiv.org/abs/2011.14439)
# - Kothapalli (2023). Neural collapse: a review on modelling principles and generalization.
#   [arXiv:2206.04041](https://arxiv.org/abs/2206.04041)

# %% tags=["for-tests"]
results = {
    "summary": summary,
    "runs": live["runs"],
    "study_settings": live["settings"],
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
    "verdicts": feedback.verdicts(),
}
Path(RESULTS_PATH).parent.mkdir(parents=True, exist_ok=True)
Path(RESULTS_PATH).write_text(json.dumps(results, indent=2))
print(f"wrote {RESULTS_PATH}:", ", ".join(results))
