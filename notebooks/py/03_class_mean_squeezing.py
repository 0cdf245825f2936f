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
# Notebook 02 saw [minority collapse](../docs/glossary.md#minority-collapse) in a model of the
# last layer, and found that with a fixed simplex-ETF classifier the centred minority class means
# [squeeze](../docs/glossary.md#class-mean-squeezing) together only because they get shorter.
# Notebook 01 trained a real network on balanced data; here we train the same kind of network, a
# small 1-D CNN, on long-tailed MNIST-1D, and ask the same questions of it. Does cross-entropy
# squeeze the minority classifier vectors and class means, against the same network trained on
# balanced data? Does a fixed ETF classifier (Yang et al. 2022) keep the means apart? When the
# minority means squeeze, is it their *direction* or their *length*? And is the lost minority
# accuracy the fault of the features or of the classifier? A control from the long-tail
# literature, classifier re-training (cRT, Kang et al. 2020), answers the last question.
#
# **What you will learn**
#
# - measure the minority squeeze of a trained network's classifier (MC_W) and class means (MC_H)
#   against a balanced run;
# - compute MC_H with both global means, and say why they differ;
# - take a squeeze apart into direction and length: raw means, centred means, and means
#   normalised before centring;
# - say what a fixed ETF classifier repairs and what it leaves;
# - run cRT on frozen features and read it: classifier or features?
#
# **Before you start**: notebooks 01 and 02 (NC1-NC4, the simplex ETF, MC_W and MC_H, the
# unconstrained-features model); PyTorch and training a classifier with SGD.
#
# **Time**: about 45 minutes with the exercises and the questionnaire. The code runs in about
# two minutes at its defaults on an idle 2-core CPU (longer on a busy one), almost all of it the
# training before the first results (`SMOKE = True`: under a minute).

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
RESULTS_PATH = "results/03_class_mean_squeezing.json"
IMBALANCE_RATIO = 100  # n_max / n_min of the step profile
N_MAX = 500  # training signals in each majority class
EPOCHS = 60  # training epochs of every run
WEIGHT_DECAY = 0.005  # SGD weight decay
SLIDER_RATIOS = [1, 10, 30, 100]  # imbalance ratios of the slider; 1 is the balanced run
METRICS_EVERY = 1  # measure NC metrics and keep the geometry every this many epochs
CRT_EPOCHS = 10  # epochs of classifier re-training (cRT) on the frozen features

# %%
if SMOKE:  # shorter training; a larger weight decay reaches the same regime sooner
    EPOCHS = 20
    WEIGHT_DECAY = 0.01
    SLIDER_RATIOS = [1]
    METRICS_EVERY = 5

# %%
import json
import tempfile
from pathlib import Path

from IPython.display import HTML, display

from allnc_edu import (
    decouple,
    experiments,
    feedback,
    predictions,
    quiz,
    report,
    run_figures,
    squeeze,
    sweep_figures,
)
from allnc_edu.evaluate import evaluate
from allnc_edu.exercises import EXERCISES
from allnc_edu.groups import minority_classes, shot_groups

RATIOS = sorted({1, *SLIDER_RATIOS, IMBALANCE_RATIO})
RUN_DIR = Path(tempfile.mkdtemp(prefix="allnc-edu-03-"))  # the long-tailed CE run's weights
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
# use a *step* [profile](../docs/glossary.md#imbalance-profile): the first five digits keep
# `N_MAX` training signals each, the last five get `N_MAX / IMBALANCE_RATIO`
# ([imbalance ratio](../docs/glossary.md#imbalance-ratio)). Those five classes with the fewest
# training samples are the [minority classes](../docs/glossary.md#minority-classes) throughout
# this notebook. The test set stays balanced (100 per digit). The data sets loaded at every ratio
# of the slider below differ only in how many signals of each class are kept. The
# [shot groups](../docs/glossary.md#shot-groups) printed last sort the classes by training count
# (many: more than 100, medium: 20 to 100, few: fewer than 20), as long-tail papers report them.

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
# classifier rows. Two of those metrics measure the minority squeeze:
# [MC_W](../docs/glossary.md#mc_w), the mean pairwise cosine of the five minority classifier
# rows, and [MC_H](../docs/glossary.md#mc_h), the same for the five minority class means
# [centred](../docs/glossary.md#centred-mean) on the class-balanced global mean. At a
# [simplex ETF](../docs/glossary.md#simplex-etf) both equal $-1/(K-1) = -0.111$.
#
# The training takes a few minutes. Before it starts, make two predictions (choose in the widget
# and press Record, or write your answer into `PREDICTION = ...`).

# %%
predictions.predict("03-predict-squeeze")

# %%
### BEGIN SOLUTION 03-predict-squeeze
PREDICTION = "B"
### END SOLUTION
SQUEEZE_PREDICTION = PREDICTION  # kept for the reveal after training

# %%
predictions.predict("03-predict-minority-accuracy")

# %%
### BEGIN SOLUTION 03-predict-minority-accuracy
PREDICTION = 10
### END SOLUTION
ACCURACY_PREDICTION = PREDICTION  # kept for the reveal after training

# %%
ce_runs = {}
for ratio in RATIOS:  # the long-tailed run keeps its weights in RUN_DIR, for cRT below
    keep = {"out_dir": RUN_DIR / "ce"} if ratio == IMBALANCE_RATIO else {}
    ce_runs[ratio] = experiments.run_method(
        "ce", datasets[ratio], record_geometry=True, **keep, **train
    )
balanced, ce = ce_runs[1], ce_runs[IMBALANCE_RATIO]
display(
    HTML(
        report.results_table(
            {"balanced (IR 1)": balanced, f"cross-entropy (IR {IMBALANCE_RATIO})": ce},
            caption="Cross-entropy on MNIST-1D",
        )
    )
)
print(f"ETF value -1/(K-1) = {ETF_COSINE:+.3f}")
for name, run in (("balanced", balanced), ("long-tailed", ce)):
    print(
        f"{name:12s}: MC_W {run.mc_weights:+.3f}, MC_H {run.mc_means:+.3f}, "
        f"minority accuracy {run.minority_accuracy:.1%}, majority {run.majority_accuracy:.1%}, "
        f"overall {run.accuracy:.1%}"
    )

# %%
predictions.reveal(
    "03-predict-squeeze", SQUEEZE_PREDICTION, measured=(balanced.mc_means, ce.mc_means)
)
predictions.reveal(
    "03-predict-minority-accuracy", ACCURACY_PREDICTION, measured=ce.minority_accuracy
)

# %% [markdown]
# Read the two rows. On balanced data the minority classes are classes like any other: their
# classifier vectors and their centred class means keep pairwise cosines near the ETF value
# (MC_W and MC_H printed above, within 0.1 of it), and the test accuracy on them is as high as
# on the other five (within a few points). With the long tail, the five minority classifier
# vectors squeeze together (MC_W rises well above the balanced value), the centred minority
# class means squeeze too (MC_H rises above the balanced value), and the minority test accuracy
# collapses (printed above, far below the balanced run's). What MC_H alone cannot tell is
# *why* the centred means squeeze, nor whether the features have lost what separates the
# minority digits: two sections below take those questions on.
#
# The 3D views show the same: arrows ending in a diamond are classifier rows, arrows ending in
# a circle are centred class means; the minority classes are thick with open tips. Ten classes
# need more than three dimensions, so each 3D picture shows the arrows from their three widest
# directions (the subtitle says how much of their squared length that keeps): use it for the
# gist (on the right, the thick arrows bunch together) and the cosine maps under it for the true
# angles. White there is the ETF value $-1/(K-1)$; red cells are pairs squeezed closer than
# that: where the minority classes squeeze, their block (classes 5 to 9) turns red.

# %%
run_figures.simplex_views(
    {"balanced (IR 1)": balanced, f"cross-entropy (IR {IMBALANCE_RATIO})": ce}
).show()

# %% [markdown]
# ## The classifier-only fix: a fixed ETF classifier
#
# If the classifier squeezes, why not forbid it? Yang et al. (2022) fix the classifier to a
# simplex ETF before training and train only the features, with the
# [dot-regression](../docs/glossary.md#dot-regression) loss that pulls each normalised feature
# onto its class's classifier vector. By construction MC_W is exactly $-1/(K-1)$. What happens
# to the class means? Predict before the run.

# %%
predictions.predict("03-predict-etf-means")

# %%
### BEGIN SOLUTION 03-predict-etf-means
PREDICTION = "B"
### END SOLUTION
ETF_PREDICTION = PREDICTION  # kept for the reveal after training

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
predictions.reveal("03-predict-etf-means", ETF_PREDICTION, measured=etf_dr.mc_means)

# %% [markdown]
# The classifier is a perfect ETF (MC_W equals $-1/(K-1)$ to four decimals), but the centred
# minority class means are squeezed: MC_H, printed above, lies far above the ETF value (by more
# than 0.3). The fixed classifier vectors of the minority classes point in well-separated
# directions, while the centred means of those classes do not line up with them: the
# [self-duality](../docs/glossary.md#self-duality) gap
# ([NC3](../docs/glossary.md#nc3): the distance between the normalised classifier and the
# normalised centred means, 0 when they coincide) is larger than for cross-entropy and for the
# balanced run. And a well-spread classifier did not help the minority digits: their accuracy
# stays about as low as with cross-entropy (within a few points), far below the balanced run's.
#
# [NC1](../docs/glossary.md#nc1), the collapse of each feature onto its class mean, does not
# reveal the problem on its own: the fixed ETF's NC1 is *lower* than cross-entropy's (printed
# above), because dot regression pulls every feature straight onto a fixed target. NC1 measures
# the spread of the features relative to the spread of the means; it says nothing about where
# the means are. The side-by-side views: in the right-hand picture, the thick diamonds sit on
# the grey ETF while the thick circles bunch together; in its cosine map the classifier
# triangle (above the diagonal) is white and the means triangle (below) has a red minority block.

# %%
run_figures.simplex_views(runs).show()

# %% [markdown]
# ## How the squeeze grows with imbalance
#
# Drag the slider: each step is a cross-entropy run at one imbalance ratio of `RATIOS`
# (precomputed above, so the slider is instant and works in any viewer). The curve below it
# collects MC_W and MC_H of the same runs against the ratio (log axis).

# %%
run_figures.runs_slider(
    {f"{r:g}": ce_runs[r] for r in RATIOS}, label="IR ", title="Cross-entropy"
).show()
sweep_figures.minority_collapse_sweep_figure(
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
# The metrics of every evaluated epoch, for the long-tailed cross-entropy run and for the fixed
# ETF classifier: NC1 (log scale), the distances of the Gram matrices to an ETF, the
# self-duality gap, and MC_W and MC_H with the ETF value dotted. For the fixed ETF, MC_W is a
# flat line at the ETF value from the first epoch, while MC_H finds its own level.

# %%
run_figures.run_metric_curves(ce, title=f"Cross-entropy, IR {IMBALANCE_RATIO}").show()
run_figures.run_metric_curves(
    etf_dr, title=f"Fixed ETF + dot regression, IR {IMBALANCE_RATIO}"
).show()

# %% [markdown]
# ## Which global mean?
#
# MC_H centres the class means on a global mean before taking cosines, and there are two
# (notebook 01, "Which global mean?"): the *class-balanced* mean $\frac1K\sum_k \mu_k$, every
# class counted once, which every MC_H in this course uses unless it says otherwise; and the
# *sample-weighted* mean $\frac1N\sum_k n_k \mu_k$, the mean of all training features, which
# Papyan et al. (2020) use. On balanced data they coincide. On a long tail the weighted mean
# sits among the majority classes, and the two give different numbers from the same means.
# Compute both on a small example.
#
# **Exercise 03-mc-h.** `means` (6, 8) are uncentred class means and `counts` their training
# counts (three classes of 500, three of 5: the minority is 3, 4, 5). Compute MC_H, the mean
# cosine over the pairs of centred minority means, twice: centred on the class-balanced global
# mean, then on the sample-weighted one. Answer with the pair `(balanced, weighted)`.

# %%
means = EXERCISES["03-mc-h"].given["means"]  # (6, 8) uncentred class means
counts = EXERCISES["03-mc-h"].given["counts"]  # (6,) training counts
### BEGIN SOLUTION
import torch


def mc_h(centre):
    centred = means - centre
    unit = centred[3:] / centred[3:].norm(dim=1, keepdim=True)
    cosines = unit @ unit.T
    return cosines[torch.triu_indices(3, 3, 1).unbind()].mean()


weights = counts.double() / counts.sum()
answer = (mc_h(means.mean(dim=0)), mc_h(weights @ means))
### END SOLUTION
EXERCISES["03-mc-h"].check(answer)
# EXERCISES["03-mc-h"].hint()   # EXERCISES["03-mc-h"].solution()

# %% [markdown]
# ## What is the squeeze made of?
#
# A centred minority mean can point close to the others for two reasons. The minority means may
# have *turned* towards each other (direction). Or they may only have got *shorter* (length):
# subtracting one global mean from means of unequal length tilts the short ones towards each
# other even when their directions do not move, which is all that happened in notebook 02's
# model with a fixed ETF classifier. To tell the two apart, `squeeze.minority_squeeze` measures
# the same five minority means of each run four ways (the mean pairwise cosine each time):
#
# - **raw**: the uncentred means. No global mean, so no tilt from length; but this network's
#   features come out of a ReLU, so every feature and every mean has non-negative coordinates and
#   raw cosines are never negative. Compare a raw value with the balanced run's raw value, not
#   with $-1/(K-1)$;
# - **centred, class-balanced**: MC_H as printed so far;
# - **centred, sample-weighted**: MC_H under Papyan et al.'s convention;
# - **normalised, then centred**: each class mean scaled to length 1 first, then centred on the
#   mean of those unit vectors. Length can no longer tilt anything: what is left is direction.
#
# A view counts as squeezed when it lies more than `MARGIN` (0.05) above the balanced run's
# value in the same view; every number comes from a single run, so read differences of a few
# hundredths with care. A squeeze that survives normalisation is one of direction; one that
# appears only after centring, and vanishes once the means are normalised, is one of length.
# The last row is the mean length of the minority means over that of the majority means (1 when
# equal). (Notebook 02 also compared each raw minority mean with its own classifier row. Here
# every feature comes out of a ReLU and the means share a large positive offset, so that cosine
# is far from 1 even on balanced data, printed last; it cannot single out the imbalance.)

# %%
MARGIN = 0.05  # a view is squeezed when it lies this far above the balanced run's value
VIEW_NAMES = {
    "raw": "raw",
    "balanced": "centred, class-balanced mean",
    "weighted": "centred, sample-weighted mean",
    "normalised": "normalised, then centred",
}
squeeze_runs = {"balanced": balanced, "ce": ce, "etf_dr": etf_dr}
labels = {"balanced": "balanced", "ce": "CE", "etf_dr": "ETF + DR"}
squeezes = {
    key: squeeze.minority_squeeze(
        run.geometry["class_means"], run.counts, run.minority, weight=run.geometry["classifier"]
    )
    for key, run in squeeze_runs.items()
}
print(f"{'mean cosine of the minority means':34s}" + "".join(f"{v:>10s}" for v in labels.values()))
for view in squeeze.VIEWS:
    row = "".join(f"{views[view]:+10.3f}" for views in squeezes.values())
    print(f"{VIEW_NAMES[view]:34s}{row}")
row = "".join(f"{views['norm_ratio']:10.2f}" for views in squeezes.values())
print(f"{'minority / majority length':34s}{row}")
row = "".join(f"{views['own_classifier']:+10.3f}" for views in squeezes.values())
print(f"{'raw mean with its own row':34s}{row}")
print(f"(ETF value of the centred views: {ETF_COSINE:+.3f})\n")
squeezed = {}
for key in ("ce", "etf_dr"):
    excess = {v: squeezes[key][v] - squeezes["balanced"][v] for v in squeeze.VIEWS}
    squeezed[key] = [v for v in squeeze.VIEWS if excess[v] > MARGIN]
    print(f"{labels[key]} minus balanced:")
    for view in squeeze.VIEWS:
        mark = "squeezed" if view in squeezed[key] else ""
        print(f"  {VIEW_NAMES[view]:32s}{excess[view]:+10.3f}  {mark}")
    kind = (
        "direction: it survives normalisation"
        if "normalised" in squeezed[key]
        else "length: normalising each mean before centring removes it"
    )
    print(f"  -> a squeeze of {kind}")

# %% [markdown]
# Read the table run by run (its columns).
#
# - **The fixed ETF classifier**: its centred MC_H is far above the balanced run's, under
#   either global mean, yet its raw minority means are not closer together than the balanced
#   run's, and once each mean is normalised the squeeze is gone (within `MARGIN` of the balanced
#   run). Its minority means are much shorter than its majority means (last row: under half
#   their length). The same as in notebook 02's model: the squeeze of the centred means is one
#   of length, seen through centring; their directions stay as spread as on balanced data.
# - **Cross-entropy**: here part of the squeeze survives normalisation (the normalised view
#   stays above the balanced run's), and the raw minority means are closer together than the
#   balanced run's too. Besides getting shorter, the minority means have turned towards each
#   other: a squeeze of direction.
# - **The convention**: the sample-weighted centring gives both long-tailed runs a larger MC_H
#   than the class-balanced one (by more than 0.1), because the weighted mean sits among the
#   majority means and pushes all the short minority means the same way. Quote MC_H with its
#   convention.
#
# The same MC_H above the ETF value can thus be made of different things. Whether a squeeze of
# direction means features that no longer tell the minority digits apart is the next question,
# and MC_H cannot answer it: accuracy has to.

# %% [markdown]
# ## Classifier or features? Classifier re-training (cRT)
#
# Kang et al. (2020) proposed a control that settles it. Keep the trained cross-entropy network,
# freeze its backbone (every layer before the classifier), re-initialise the linear classifier
# and train it alone for a few epochs with *class-balanced sampling*: every digit is drawn
# equally often, so each of the five signals of a minority digit is seen far more often than in
# ordinary training (the printout says how often). The features do not change at all. If the
# minority accuracy recovers, the features already told the minority digits apart and the learned
# classifier was what failed them; if it does not, the features are to blame.
#
# `decouple.trained_method` loads the long-tailed run's weights (kept in `RUN_DIR` during
# training); `decouple.retrain_classifier` does the rest on a copy and scores it with the same
# evaluation as every run above. Think before you run it: of CE's minority accuracy and the
# balanced run's, which will cRT land nearer to? (It takes seconds.)

# %%
ce_method = decouple.trained_method(RUN_DIR / "ce", data).to(DEVICE)
before = evaluate(ce_method, data)
crt = decouple.retrain_classifier(ce_method, data, epochs=CRT_EPOCHS, seed=SEED, device=DEVICE)
after = crt.record
minority = minority_classes(data.counts)
per_digit = [crt.drawn[c] / data.counts[c] for c in minority]
print(
    f"cRT drew {crt.record.samples} samples in {CRT_EPOCHS} epochs: each minority signal about "
    f"{sum(per_digit) / len(per_digit):.0f} times, each majority signal about "
    f"{crt.drawn[0] / data.counts[0]:.1f} times"
)
print(f"{'':22s}{'minority':>10s}{'majority':>10s}{'overall':>10s}{'MC_W':>9s}{'MC_H':>9s}")
for name, rec in (
    ("CE, as trained", before),
    ("CE, after cRT", after),
    ("balanced run (IR 1)", balanced.final),
):
    print(
        f"{name:22s}{rec.minority_accuracy:10.1%}{rec.majority_accuracy:10.1%}"
        f"{rec.accuracy:10.1%}{rec.mc_weights:+9.3f}{rec.mc_means:+9.3f}"
    )
gained = after.minority_accuracy - before.minority_accuracy
gap = balanced.minority_accuracy - before.minority_accuracy
print(
    f"\ncRT gains {100 * gained:.1f} points of minority accuracy: {gained / gap:.0%} of the way "
    "from CE to the balanced run"
)

# %% [markdown]
# What the control shows (numbers printed above):
#
# - The minority accuracy **recovers part of the way**: by more than 25 points, with the
#   majority accuracy down by less than five, yet it stays far below the balanced run's. The
#   classifier was a large part of the failure: the features CE learned from five signals a
#   digit carry enough of what separates the minority digits for a classifier that sees them
#   as often as the others to win back those points. They are not as good as features learned
#   from 500 signals a digit: the re-trained classifier on top of them does not make up the
#   rest.
# - **MC_H did not move** (the same value before and after: the features are the same), while
#   MC_W fell to near the ETF value: the re-balanced classifier no longer squeezes. The minority
#   accuracy changed by tens of points at a fixed MC_H, so MC_H alone does not predict it.
#
# ## What this means for AllNC
#
# AllNC (Zhang et al. 2024) starts from the observation that under imbalance the minority class
# *means* squeeze too, not only the classifier, even when the classifier is fixed to an ETF, and
# it adds losses that pull features, class means and classifier towards one ETF. This notebook
# measured what that squeeze is made of in a trained network. With a fixed ETF classifier the
# centred squeeze is length alone: short minority means tilted together by centring, their
# directions intact. With cross-entropy it is partly direction, and there cRT shows that the
# features still carry much of the minority information while a re-balanced classifier recovers
# only part of the accuracy. So two things fail at once: a classifier tilted towards the majority,
# which re-training it on balanced batches repairs, and minority features that are shorter and,
# under cross-entropy, less distinct, which it does not. Whether restoring the geometry of both,
# as AllNC does, repairs more than re-balancing the classifier (logit adjustment) is what
# notebook 04 measures.

# %% [markdown]
# ## Key takeaways
#
# - Under a long tail, cross-entropy squeezes the minority classifier rows (MC_W) and the centred
#   minority class means (MC_H), and the minority test accuracy collapses.
# - A fixed ETF classifier holds MC_W at $-1/(K-1)$ but not MC_H, and does not help the minority
#   accuracy; NC1 alone hides the problem.
# - MC_H depends on the global mean it centres on (class-balanced or sample-weighted): quote it
#   with its convention.
# - A squeeze of the centred means can be length seen through centring or a real turn of
#   direction; the raw and the normalised views tell them apart. Here: length under the fixed
#   ETF, partly direction under cross-entropy.
# - Re-training only the classifier with class-balanced sampling (cRT) recovers part of the
#   minority accuracy on unchanged features: the classifier was a large part of the failure, the
#   features the rest.
#
# ## Questionnaire and further research
#
# Answer in place (widgets), or with `quiz.ask("03-q1", "A")` where widgets do not show.

# %%
quiz.questionnaire("03")

# %% [markdown]
# ## References
#
# - Papyan, Han and Donoho (2020), Prevalence of neural collapse during the terminal phase of
#   deep learning training, PNAS. https://doi.org/10.1073/pnas.2015509117
# - Fang, He, Long and Su (2021), Exploring deep neural networks via layer-peeled model: minority
#   collapse in imbalanced training, PNAS. https://doi.org/10.1073/pnas.2103091118
# - Yang, Chen, Li, Xie, Lin and Tao (2022), Inducing neural collapse in imbalanced learning: do
#   we really need a learnable classifier at the end of deep neural network?, NeurIPS.
#   https://arxiv.org/abs/2203.09081
# - Kang, Xie, Rohrbach, Yan, Gordo, Feng and Kalantidis (2020), Decoupling representation and
#   classifier for long-tailed recognition, ICLR. https://arxiv.org/abs/1910.09217
# - Zhang, Li, Geng and Chen (2024), All-around neural collapse for imbalanced classification.
#   https://arxiv.org/abs/2408.07253
# - Greydanus (2020), Scaling down deep learning (MNIST-1D). https://arxiv.org/abs/2011.14439
# - Kothapalli (2023), Neural collapse: a review on modelling principles and generalization,
#   TMLR. https://arxiv.org/abs/2206.04041

# %% tags=["for-tests"]
scores = ("accuracy", "minority_accuracy", "majority_accuracy", "mc_weights", "mc_means")
results = {
    **experiments.key_numbers({"balanced": balanced, "ce": ce, "etf_dr": etf_dr}),
    "etf_dr_mc_weights_history": [r.mc_weights for r in etf_dr.evaluated],
    "sweep": {
        "ratios": RATIOS,
        "mc_weights": [ce_runs[r].mc_weights for r in RATIOS],
        "mc_means": [ce_runs[r].mc_means for r in RATIOS],
        "minority_accuracy": [ce_runs[r].minority_accuracy for r in RATIOS],
    },
    "squeeze": {
        "margin": MARGIN,
        **{key: {**views, "squeezed": squeezed.get(key)} for key, views in squeezes.items()},
    },
    "crt": {
        "epochs": CRT_EPOCHS,
        "drawn": crt.drawn,
        "before": {k: getattr(before, k) for k in scores},
        "after": {k: getattr(after, k) for k in scores},
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
    "verdicts": feedback.verdicts(),
}
Path(RESULTS_PATH).parent.mkdir(parents=True, exist_ok=True)
Path(RESULTS_PATH).write_text(json.dumps(results, indent=2))
print(f"wrote {RESULTS_PATH}:", ", ".join(results))
