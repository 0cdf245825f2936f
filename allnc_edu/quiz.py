"""Questionnaires at the end of each notebook, answered in place, and further research.

``QUESTIONNAIRES`` maps a notebook ("01".."05") to its questions (``feedback.Question``:
multiple choice or numeric, each with its explanation); ``FURTHER_RESEARCH`` to open tasks. In a
notebook::

    quiz.questionnaire("01")   # widgets: an answer box and a Check button per question
    quiz.ask("01-q3", "B")     # without widgets: a letter (or position from 0), or a number

Every answer is judged at once, its explanation shown, and its verdict recorded like every
check (``feedback.verdicts``). The widgets use only ipywidgets APIs present in versions 7 and 8;
without ipywidgets, or outside a Jupyter kernel, ``questionnaire`` prints the questions instead.
"""

from __future__ import annotations

import html
from typing import Any

from .feedback import Question, letter, widgets_available

# One question per "## id" block: its text, then "* " the correct option and "- " the others
# (" | " adds the sentence shown when that wrong option is picked), or "= answer ± tolerance"
# and "~ value ± tolerance | sentence" for a typical wrong number; "> " the explanation. An
# indented line continues the line above it.
_QUESTIONS = """
## 01-q1
Papyan, Han and Donoho (2020) observed neural collapse in which phase of training?
- the first few epochs
* the terminal phase: training on after the training error reaches zero
- only without weight decay
- only on imbalanced data
> They kept training past zero training error (the terminal phase of training) and saw the four
  properties emerge as the loss kept falling, across networks and data sets.
## 01-q2
NC1 says that:
- the classifier rows have equal norms
* the features of each class collapse onto their class mean
- the classifier picks the nearest class mean
- the class means form a simplex ETF
> Variability collapse: the within-class covariance vanishes against the between-class one, NC1
  = Tr(Sigma_W Sigma_B^+)/K -> 0. The other options are NC2-NC4.
## 01-q3
The pairwise cosine of two vectors of a K = 10 simplex ETF (3 decimals)?
= -0.1111111111 ± 0.001
~ -0.1 ± 0.0005 | -0.1 is -1/K; the ETF has -1/(K-1).
> -1/(K-1) = -1/9 = -0.111: the most negative value ten unit vectors can share.
## 01-q4
The angle, in degrees, between two vectors of a K = 3 simplex ETF?
= 120 ± 0.5
~ 2.094 ± 0.01 | that is 120° in radians; give degrees.
~ -0.5 ± 0.001 | that is the cosine; give the angle.
> arccos(-1/2) = 120°: three arrows in a plane, as in the notebook's first figure.
## 01-q5
The smallest dimension that holds a K-class simplex ETF?
- K
* K - 1
- K + 1
- 2
> Its K vectors sum to zero, so they span K - 1 dimensions: a triangle in the plane for K = 3,
  a tetrahedron in 3D for K = 4 (geometry.simplex_etf(K, K - 1)).
## 01-q6
NC3, self-duality, says that:
- the classifier rows are orthogonal
- each feature equals its classifier row, norm included
- the classifier has no bias
* the normalised classifier equals the normalised centred class means, W/||W|| = Mbar/||Mbar||
> Equal up to one overall scale: in notebook 01 the means are sqrt(K) times longer than the
  classifier rows, and the self-duality gap is still 0.
## 01-q7
NC4 says that:
* the classifier decides as the nearest class mean does
- every class is classified correctly
- the logits are all equal
> Once NC1-NC3 hold, argmax_k w_k . h + b_k picks the class whose mean is nearest to h; the
  notebook measures that agreement on every sample (1.000).
## 01-q8
Which global mean does this package centre the class means on by default?
- the sample-weighted mean of all features | that is Papyan et al.'s convention, available as
  global_mean='weighted'
* the class-balanced mean (1/K) sum_k mu_k
- none: the origin
> metrics.nc_metrics uses the class-balanced mean unless global_mean='weighted'; Papyan et
  al.'s convention is the sample-weighted one. On balanced data the two coincide; under
  imbalance they do not, and notebooks 02-03 show how much that moves MC_H.
## 01-q9
The unconstrained-features model treats what as free variables?
- every weight of the network
* the last-layer features h_i, trained with the classifier W
- the input images
> A network expressive enough can put its last-layer features anywhere, so the model optimises
  them directly (Mixon et al. 2020, Fang et al. 2021). With cross-entropy and weight decay its
  global minima are neural-collapse configurations and every other critical point is a strict
  saddle (Zhu et al. 2021).
## 01-q10
In notebook 01's UFM (K = 4, equal weight decays on W and H, the per-class feature penalty), how
many times longer is a class mean than a classifier row at the optimum?
= 2 ± 0.01
~ 0.5 ± 0.01 | inverted: the means are the longer ones.
> The penalty is smallest at lambda_W K a^2 = lambda_H b^2, so b/a = sqrt(K lambda_W /
  lambda_H) = sqrt(4) = 2 (ufm.balanced_norms). With the penalty written as a sum over the
  samples, ||H||_F^2, the same lambda gives 1/sqrt(n) instead: the lengths are a convention.
## 01-q11
The Gram matrix of a simplex ETF (its cosines) equals:
- I
* K/(K-1) (I - J/K)
- I - J/K | I - J/K has (K-1)/K on its diagonal: scale it by K/(K-1)
- J/K
> 1 on the diagonal and -1/(K-1) off it: geometry.etf_gram(K).
## 02-q1
Minority collapse (Fang et al. 2021): past a threshold imbalance ratio,
- the majority classifiers vanish
- all features collapse to the origin
- the minority training loss reaches zero
* the minority classifiers point the same way
> The minority classifier vectors merge into one direction (and shrink), so the network can no
  longer tell the minority classes apart.
## 02-q2
MC_W is:
* the mean pairwise cosine of the minority classifier rows
- the minority / majority classifier norm ratio
- the cosine between each minority classifier and its class mean
> MC_H is the same for the centred minority class means; both are -1/(K-1) at an ETF.
## 02-q3
MC_W at a simplex ETF with K = 4 classes (3 decimals)?
= -0.3333333333 ± 0.002
> -1/(K-1) = -1/3: the minority rows are as spread as every other pair.
## 02-q4
MC_W at complete minority collapse?
= 1 ± 0.001
> Every pair of minority classifier rows points the same way: cosine 1.
## 02-q5
Step profile, K = 4, n_max = 1000, imbalance ratio 100: training samples in each minority
class?
= 10
> The first K//2 = 2 classes keep n_max; the other two get int(1000 / 100) = 10.
## 02-q6
Fang et al. (2021) studied minority collapse in which model?
- linear regression
- a kernel machine
* the layer-peeled model
> The layer-peeled model optimises the last-layer features and classifier under norm budgets;
  the UFM's default feature_penalty='class' (each class's mean squared feature norm counted
  equally) is its Lagrangian form.
## 02-q7
In the UFM, complete minority collapse is:
- a limit: MC_W nears 1 only as the ratio goes to infinity
* a threshold: from a finite ratio on, MC_W is exactly 1
> Notebook 02 brackets it near IR 200 at weight decay 5e-3 (K = 4), every run converged: a
  threshold found numerically in this model. Fang et al.'s theorem is the limit statement (the
  minority classifiers' differences vanish as the ratio goes to infinity).
## 02-q8
Raising the weight decay from 5e-3 to 1e-2 moves that threshold:
* to a smaller imbalance ratio
- to a larger one
- nowhere
> At the explorer's settings the UFM puts it near IR 198 at 5e-3 and IR 100 at 1e-2: a stronger
  penalty makes separate minority classifiers more expensive.
## 02-q9
SELI (Thrampoulidis et al. 2022) is the geometry the UFM approaches when:
- the imbalance ratio goes to infinity
- training stops early
* the weight decay vanishes, with a per-sample feature penalty
> With plain weight decay on every sample's feature (feature_penalty='sample') the UFM
  converges in direction to the simplex-encoded-labels interpolation; at balance SELI is the
  simplex ETF.
## 02-q10
In the SELI limit the minority classifiers:
- stay at the ETF
* lean towards each other without merging
- merge: MC_W = 1
> SELI's MC_W lies between -1/(K-1) and 1, and its minority embeddings spread apart (MC_H below
  -1/(K-1)): how the penalty weighs the classes decides what squeezes.
## 02-q11
W fixed to a simplex ETF (K = 4, weight decay 5e-3); the ratio grows. The raw (uncentred)
minority class means:
- turn towards each other
* stay on their own classifier rows at the ETF angle, only shrinking
- grow longer
> Measured with the UFM: they stay exactly on their rows, at the ETF angle to each other; only
  their length shrinks (to 0.44 at IR 1000, against 3.3 for the majority).
## 02-q12
Then why does that run's centred MC_H still rise (to +0.80 at IR 1000)?
- the minority means rotate
- the classifier moves
* subtracting a global mean from means of unequal length tilts the short minority means towards
  each other
> Centring moves every mean by the same vector; for short means that shift dominates, so the
  centred minority means point nearly the same way.
## 02-q13
Same fixed-ETF run at IR 10: MC_H is -0.15 centred on the class-balanced mean. Centred on the
sample-weighted mean it is:
- smaller
* much larger (+0.42)
- the same
> The sample-weighted mean sits near the long majority means; centring on it pushes both
  minority means the same way. The convention alone moves MC_H: report it with the number.
## 03-q1
K = 10 classes, five of them minority: over how many pairs does MC_H average?
= 10
> 5 choose 2 = 10 pairs of distinct minority classes.
## 03-q2
Step profile, N_MAX = 500, IR 100: training signals per minority digit?
= 5
> int(500 / 100) = 5, against 500 for each majority digit.
## 03-q3
MC_H is the mean pairwise cosine of:
* the minority classes' centred class means
- the minority features
- the minority classifier rows
> Class means, centred on the global mean; MC_W is the same for the classifier rows.
## 03-q4
A fixed ETF classifier with dot regression (Yang et al. 2022) has MC_W:
- rising as under CE
- 1
* -1/(K-1) exactly, at every epoch
> The classifier is fixed to an ETF before training, so it cannot squeeze.
## 03-q5
Dot regression, 1/2 (w^_y . h^ - 1)^2, differs from cross-entropy in that:
- it trains the classifier
* it has no gradient from the other classes' vectors
- it adjusts the logits
> It only pulls each normalised feature onto its own class's fixed vector; the other vectors
  are already separated.
## 03-q6
The fixed ETF's NC1 is lower than CE's, yet its minority means are squeezed. How?
* NC1 measures the spread of features around their means, not where the means are
- NC1 is measured on the test set
- NC1 ignores the minority classes
> The features collapse onto class means that are themselves squeezed: read NC1 with MC_H and
  the self-duality gap.
## 03-q7
With W fixed to an ETF, why is self-duality (NC3) broken?
- the classifier moved
- NC3 needs a bias
* the centred minority means do not line up with their fixed rows
> The rows are a perfect ETF; the centred means are not, so normalised W and normalised means
  differ.
## 03-q8
Papyan et al. centre the class means on:
- the origin
* the sample-weighted mean of all training features
- the class-balanced mean
> On their balanced data the two agree; under imbalance this package defaults to the class-
  balanced mean and reports the convention with every result.
## 03-q9
Under a long tail, the sample-weighted global mean sits:
* close to the majority class means
- at the mean of the class means
- close to the minority means
> 500 of every 505 training signals of a majority-minority pair are majority ones.
## 03-q10
Why is notebook 03's test set balanced (100 signals per digit)?
- MNIST-1D has no more
- to train faster
* so every class weighs the same in the accuracy
> A long-tailed test set would reward ignoring the tail; a balanced one measures every class on
  as many samples.
## 03-q11
Which classes are the minority here?
- those with the lowest test accuracy
* the K - K//2 = 5 with the fewest training samples
- those with fewer than 20 samples | that is the few-shot group, a different definition
> groups.minority_classes; here they coincide with the few-shot group, not in general.
## 03-q12
With a fixed ETF classifier, the minority means' squeeze vanishes once each class mean is scaled
to length 1 before centring. The squeeze was made of:
- their directions turning towards each other | that would survive the normalisation
* their length: short means tilted together by centring
- the sample-weighted global mean | the normalised view centres on the mean of unit vectors
> Normalising first removes length; what is left is direction, and it is as spread as on
  balanced data. Centring means of unequal length tilts the short ones towards each other.
## 03-q13
cRT (Kang et al. 2020) re-trains which part of the network?
- all of it, on class-balanced batches
* only the linear classifier, on the frozen features, with class-balanced sampling
- only the backbone, with the classifier fixed to an ETF | that is closer to the fixed ETF run
> The backbone is frozen, so the features and every class mean stay as they were: if the
  minority accuracy recovers, the classifier, not the features, was what failed.
## 03-q14
After cRT the minority accuracy rose by tens of points. What happened to MC_H?
- it fell to the ETF value
* nothing: the features, and so the class means, did not change
- it rose
> MC_H is computed from the class means of the frozen features; only the classifier (MC_W)
  changed. Accuracy moved at a fixed MC_H.
## 04-q1
Which AllNC component acts on individual activations (NC1)?
* HyCon
- P2P
- GBBN
> HyCon, the hybrid contrastive loss; P2P aligns class means and classifiers (NC2, NC3); GBBN
  schedules feature and classifier learning.
## 04-q2
P2P's default ('cross') form is zero exactly when:
- the classifier rows are orthogonal
- the features equal their means
* every centred, normalised mean equals its normalised classifier row and both form an ETF
> (1/K^2) ||M~ W^^T - G*||^2 = 0: its diagonal asks self-duality, its off-diagonal the ETF
  angle between each mean and every other class's classifier.
## 04-q3
alpha(t) = 1 - (t/T)^gamma with gamma = 2: alpha halfway (t/T = 0.5)?
= 0.75 ± 0.001
~ 0.25 ± 0.001 | that is 1 - alpha, the re-balancing weight.
~ 0.5 ± 0.001 | that is linear; gamma = 2 squares t/T.
> 1 - 0.5^2 = 0.75: three quarters of the loss still on the conventional branch.
## 04-q4
At the start of training, GBBN puts all the weight on:
* the conventional branch (feature learning)
- the re-balancing branch
- both equally
> alpha(0) = 1; the class-balanced branch takes over as t reaches T.
## 04-q5
Logit adjustment (Menon et al. 2021) as this package trains it:
- CE reweighted by 1/pi_y
- CE on class-balanced batches
* CE(z + tau log pi, y) in training, raw logits at inference
> Adding the log prior makes a minority class win by a larger raw margin; at tau = 1 it is
  Balanced Softmax. Menon et al. also give a post-hoc form that subtracts tau log pi from a
  plainly trained model's logits.
## 04-q6
LDAM margins scale as n_k^(-1/4) (Cao et al. 2019). How many times larger is the margin of a
class with 16 images than of one with 256?
= 2 ± 0.01
~ 16 ± 0.01 | that is the count ratio; take its fourth root.
~ 4 ± 0.01 | that is a square root; the exponent is 1/4.
> (256/16)^(1/4) = 16^(1/4) = 2.
## 04-q7
DRW in LDAM-DRW means:
* deferred re-weighting: class weights switched on late in training
- dropout re-weighting
- re-sampling from the start
> Cao et al. train with plain weights first, then re-weight by effective numbers (Cui et al.
  2019): features first, re-balancing later, as in BBN.
## 04-q8
BBN (Zhou et al. 2020) has:
- two networks trained separately
- one branch with logit adjustment
* two branches on one backbone, uniform and reversed sampling, mixed by 1 - (T/T_max)^2
> GBBN keeps the two branches and makes the exponent of the cumulative weight a parameter,
  gamma.
## 04-q9
Why does AllNC see twice the samples of CE in the same epochs?
- HyCon duplicates samples
* its re-balancing branch draws a second, class-balanced batch every step
- it trains twice as long
> Hence the ce-2x and la-2x runs: the baselines trained on as many samples.
## 04-q10
Without random shifts AllNC fell behind logit adjustment. Why?
* its balanced branch re-draws each minority digit's five signals until they are memorised
- P2P diverges
- HyCon needs augmentation
> Shifted, every draw is a new view; the studies in docs/studies show AllNC gaining far more
  from the shifts than logit adjustment.
## 04-q11
HyCon's positive for an anchor is:
- another view of the same sample
- its classifier row
* its own class mean from the bank; negatives are the other means and other-class samples
> Prototype level and instance level together: hence 'hybrid'.
## 04-q12
The AllNC of this package is:
* a documented reconstruction, every reconstructed choice a named option
- the authors' code
> The paper's exact equations were not available; docs/method.md lists each choice.
## 05-q1
A class with exactly 100 training images is in which shot group?
- many
* medium
- few
> Many means more than 100; medium is 20 to 100.
## 05-q2
And a class with exactly 20?
- many
* medium
- few
> Few means fewer than 20; 20 itself is medium.
## 05-q3
CIFAR-10-LT at IR 100 (n_max 5000): images in its smallest class?
= 50
> int(5000 * 100^(-9/9)) = 50.
## 05-q4
How many of CIFAR-10-LT's ten classes (IR 100) are few-shot?
= 0
> The smallest has 50 images: 8 classes are many-shot, 2 medium, none few-shot.
## 05-q5
CIFAR-100-LT at IR 100 (n_max 500): total training images?
= 10847
> sum_k int(500 * 100^(-k/99)) = 10847 (CIFAR-10-LT: 12406).
## 05-q6
Classifier re-training, cRT (Kang et al. 2020):
- train two networks
- drop the labels
* learn the features with instance-balanced sampling, then re-train only the classifier on
  class-balanced batches
> Decoupling: the representation learns best from plain sampling, the classifier needs re-
  balancing; GBBN's schedule moves from one to the other within one run.
## 05-q7
Why report the last epoch, not the best test epoch?
- it is faster
* picking a checkpoint on the test set tunes on it
- the last is always best
> Choose settings on a validation split; report the test split once.
## 05-q8
A long-tailed benchmark's test set is:
* balanced
- long-tailed like the training set
- the tail classes only
> CIFAR-10-LT keeps CIFAR-10's 1000 test images per class.
## 05-q9
The MNIST-1D stand-in's numbers next to published CIFAR numbers are:
- comparable
- an upper bound
* not comparable
> Another data set and network: the stand-in shows the code runs, nothing about CIFAR.
## 05-q10
Cross-entropy with ResNet-32 on CIFAR-10-LT at IR 100 (Cao et al. 2019): top-1 accuracy in
percent?
= 70.36 ± 1
> 70.36% (38.32% on CIFAR-100-LT), quoted in notebook 05.
## 05-q11
The minority classes and the few-shot group are:
* different definitions
- the same
> Minority: the K - K//2 smallest classes; few: fewer than 20 images. CIFAR-10-LT at IR 100 has
  five minority classes and no few-shot class.
## 05-q12
Over the study records, runs with a lower MC_H than the other methods of their setting tended to
be more accurate, with the same sign in every seed. What does that show?
- that lowering MC_H raises accuracy | a correlation between recipes, which differ in how they
  re-balance the classes as much as in their geometry
* that geometry and accuracy go together across these methods; whether one causes the other is
  untested
- nothing: it is noise | it has the same sign in every seed
> A cause needs an intervention that changes the geometry alone (P2P's weight swept with
  everything else fixed, say); logit adjustment, more accurate than CE with classifiers as
  squeezed, argues against the causal reading.
## 05-q13
A metric correlates with accuracy at r = -0.5. What share of the variance of accuracy does a
straight line in the metric account for (a fraction)?
= 0.25 ± 0.01
~ 0.5 ± 0.01 | that is |r|; the share is r squared.
~ -0.5 ± 0.01 | that is r itself; the share is r squared.
> r^2 = 0.25: a quarter; three quarters of the differences in accuracy lie elsewhere.
"""


def _parse_question(block: str) -> Question:
    """One question from its block of :data:`_QUESTIONS`."""
    question_id, *lines = block.strip().split("\n")
    text, items = [], []
    for line in lines:
        if line.startswith("  ") and items:
            items[-1][1] += " " + line.strip()
        elif line[:2] in ("* ", "- ", "= ", "~ ", "> "):
            items.append([line[0], line[2:].strip()])
        else:
            text.append(line.strip())
    fields: dict = {"options": None, "why_not": {}, "mistakes": ()}
    for marker, body in items:
        head, _, sentence = body.partition(" | ")
        value, _, tolerance = head.partition(" ± ")
        if marker in "*-":
            fields["options"] = (*(fields["options"] or ()), head)
            if marker == "*":
                fields["answer"] = len(fields["options"]) - 1
            if sentence:
                fields["why_not"][len(fields["options"]) - 1] = sentence
        elif marker == "=":
            fields.update(answer=float(value), tolerance=float(tolerance or 0))
        elif marker == "~":
            fields["mistakes"] += ((float(value), float(tolerance or 0), sentence),)
        else:
            fields["explanation"] = body
    return Question(id=question_id, notebook=question_id[:2], text=" ".join(text), **fields)


QUESTIONS: dict[str, Question] = {
    q.id: q for q in map(_parse_question, _QUESTIONS.split("\n## ")[1:])
}
QUESTIONNAIRES: dict[str, tuple[Question, ...]] = {
    notebook: tuple(q for q in QUESTIONS.values() if q.notebook == notebook)
    for notebook in ("01", "02", "03", "04", "05")
}

FURTHER_RESEARCH: dict[str, tuple[str, ...]] = {
    "01": (
        "Prove that -1/(K-1) is the most negative cosine K unit vectors can share (expand "
        "||sum_k v_k||^2 >= 0). When is it reached?",
        "Read Papyan, Han and Donoho (2020): on which data sets and networks did they see "
        "neural collapse, and what did it do to robustness and generalisation?",
        "Run the UFM with unequal weight decays and check the norms against ufm.balanced_norms.",
    ),
    "02": (
        "Map the complete-collapse threshold against the weight decay (five values from 1e-3 "
        "to 2e-2, ufm.imbalance_sweep and geometry.complete_collapse) and plot it.",
        "Compare feature_penalty='class' and 'sample' at IR 1000: which squeezes the minority "
        "means? Relate it to the layer-peeled model and to SELI.",
        "Read Thrampoulidis et al. (2022), 'Imbalance trouble': what do SELI's norms say about "
        "the minority embeddings?",
    ),
    "03": (
        "Recompute MC_H of the runs with global_mean='weighted': how much of the squeeze is "
        "the convention?",
        "Vary cRT: its sampler's exponent q (0, 0.5, 1) and its epochs (1 to 30). How much "
        "of the minority accuracy comes back with each, and what happens to the majority?",
        "Read Yang et al. (2022): what do they claim the fixed ETF gives, and what does this "
        "notebook add?",
    ),
    "04": (
        "Vary GBBN's gamma (0.5, 1, 2, 4) and plot the minority accuracy against it.",
        "Compare AllNC with logit adjustment trained on as many samples (la-2x).",
        "Switch P2P to mode='separate' or 'both' and compare MC_W, MC_H and the self-duality gap.",
    ),
    "05": (
        "Implement cRT (Kang et al. 2020): freeze the CE run's backbone, re-train the head on "
        "class-balanced batches, compare the shot groups.",
        "On a GPU, run CIFAR-100-LT and compare your LDAM-DRW with Cao et al. (2019).",
        "Tabulate every method by shot group: which group does each remedy help?",
        "Test the causal reading of the synthesis: train AllNC with lambda_p = 0, 0.03, 0.1, "
        "0.3 and 1, everything else fixed, over three seeds; plot MC_H and minority accuracy "
        "against lambda_p.",
    ),
}


def _question(question_id: str) -> Question:
    if question_id not in QUESTIONS:
        raise ValueError(
            f"no question {question_id!r}; they are named like '01-q1' (quiz.QUESTIONS)"
        )
    return QUESTIONS[question_id]


def ask(question_id: str, answer: Any) -> bool | None:
    """Answer one question: a letter (or position from 0) or a number. Prints the verdict and
    the explanation; returns True, False or None (no answer). Never raises on the answer."""
    return _question(question_id).check(answer)


def _notebook(notebook: str) -> tuple[Question, ...]:
    if notebook not in QUESTIONNAIRES:
        raise ValueError(f"no questionnaire {notebook!r}; there are {', '.join(QUESTIONNAIRES)}")
    return QUESTIONNAIRES[notebook]


def questionnaire_text(notebook: str) -> str:
    """The questionnaire and the further research of a notebook as plain text."""
    example = f'quiz.ask("{notebook}-q1", "A")'
    lines = [f"Questionnaire {notebook}: answer each with {example}, a letter or a number."]
    for q in _notebook(notebook):
        lines.append(f"{q.id}: {q.text}")
        if q.options is None:
            lines.append("  (a number)")
        lines += [f"  {letter(i)}) {option}" for i, option in enumerate(q.options or ())]
    lines.append("Further research:")
    lines += [f"- {task}" for task in FURTHER_RESEARCH[notebook]]
    return "\n".join(lines)


def _question_widget(question: Question, widgets):
    """One question: its text, an answer box, a Check button and the feedback."""
    if question.options is not None:
        choices = [(f"{letter(i)}) {text}", i) for i, text in enumerate(question.options)]
        control = widgets.Dropdown(options=[("choose an answer", None), *choices], value=None)
    else:
        control = widgets.FloatText(value=0.0, description="answer")
    button = widgets.Button(description="Check")
    feedback = widgets.HTML(value="")

    def on_check(_button) -> None:
        verdict, line = question.evaluate(control.value)
        shown = html.escape(line)
        if verdict is not None:
            shown += f"<br><i>{html.escape(question.explanation)}</i>"
        feedback.value = shown

    button.on_click(on_check)
    text = widgets.HTML(value=f"<b>{question.id}</b> {html.escape(question.text)}")
    return widgets.VBox([text, widgets.HBox([control, button]), feedback])


def questionnaire_widget(notebook: str):
    """The questionnaire as widgets (ipywidgets 7 and 8), further research at the end."""
    import ipywidgets as widgets

    items = [_question_widget(q, widgets) for q in _notebook(notebook)]
    tasks = "".join(f"<li>{html.escape(task)}</li>" for task in FURTHER_RESEARCH[notebook])
    research = widgets.HTML(value=f"<b>Further research</b><ul>{tasks}</ul>")
    return widgets.VBox([*items, research])


def questionnaire(notebook: str):
    """Show a notebook's questionnaire: widgets when they can show (returned), else the text
    (printed; answer with :func:`ask`) and None."""
    if widgets_available():
        return questionnaire_widget(notebook)
    print(questionnaire_text(notebook))
    return None
