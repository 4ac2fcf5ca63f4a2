"""Shared by the experiments' decide scripts: reading pooled evaluation files, and the guards
every plan since focal-dice-192 applies (no fold lower by more than 0.015, detection accuracy
and mean ROC-AUC not lower by more than 0.005)."""
import json
import os
import sys


def figures(seg_path, det_path, folds):
    """Mean per-patient Dice (pooled and per fold) of an `evaluate pool` segmentation file, and
    detection accuracy / mean fold ROC-AUC of a pooled detection file."""
    seg = json.load(open(seg_path))["segmentation"]
    det = json.load(open(det_path))["detection"]
    by_fold = {f["fold"]: f["value"] for f in seg["folds"]}
    out = {"dice": seg["patient_dice_mean"]["value"]}
    out.update({f"fold{f}": by_fold[f] for f in folds})
    out.update({"accuracy": det["accuracy"], "auc": det["mean_fold_roc_auc"]})
    return out


def evaluation_file(out, name, kind):
    """`kind`.json of the evaluation folder `name` in an evaluate.sh OUT, or its copy under
    results/ (`name-kind.json`, the naming of ../cross-validation/bundle.sh's collect_results)."""
    path = f"{out}/{name}/{kind}.json"
    return path if os.path.exists(path) else f"{out}/{name}-{kind}.json"


def pooled_file(tag, *dirs):
    """The pooled evaluation `TAG-val-pooled` in the first of `dirs` that holds it: an evaluate.sh
    OUT (`TAG-val-pooled/pooled.json`) or a results/ folder (`TAG-val-pooled.json`,
    collect_results' copy). Exits when none does."""
    for d in dirs:
        for path in (f"{d}/{tag}-val-pooled/pooled.json", f"{d}/{tag}-val-pooled.json"):
            if os.path.exists(path):
                return path
    sys.exit(f"no pooled evaluation of {tag}")


def pooled_figures(tag, *dirs):
    """`figures` (folds 1 + 3) of `pooled_file(tag, *dirs)`."""
    path = pooled_file(tag, *dirs)
    return figures(path, path, (1, 3))


def variant_means(path):
    """Mean patient Dice of every clean-up variant in an `evaluate segment` file's table."""
    return {v["variant"]: v["patient_dice_mean"]["value"] for v in json.load(open(path))["postprocessing"]}


def val_files(prefix):
    """An experiment's one-network-per-split validation evaluation on folds 1 + 3:
    `PREFIX-val-pooled.json` (Dice) and `PREFIX-largest-val-pooled.json` (detection)."""
    return f"{prefix}-val-pooled.json", f"{prefix}-largest-val-pooled.json"


def val_figures(prefix):
    """`figures` of `val_files(prefix)`."""
    return figures(*val_files(prefix), (1, 3))


def table(title, rows, keys):
    """A markdown table: `title` heads the label column(s), `rows` are (label, figures)."""
    print(f"| {title} | " + " | ".join(keys) + " |")
    print("| --- |" + " --- |" * (title.count("|") + len(keys)))
    for name, f in rows:
        print(row(name, f, keys))


def pooled_pair(title, folds, base_name, base_path, cand_name, cand_path):
    """Two pooled files' figures (`evaluate pool` of both `evaluate segment` and `evaluate
    detect`) as a table; returns the differences (candidate - baseline) and their keys."""
    base = figures(base_path, base_path, folds)
    return tabled(title, base_name, base, cand_name, figures(cand_path, cand_path, folds))


def tabled(title, base_name, base, cand_name, cand):
    """Baseline and candidate figures as a table; returns the differences (candidate -
    baseline) and their keys."""
    keys = list(base)
    table(title, [(base_name, base), (cand_name, cand)], keys)
    return {k: cand[k] - base[k] for k in keys}, keys


def row(name, f, keys):
    """One markdown table row of figures."""
    return f"| {name} | " + " | ".join(f"{f[k]:.4f}" for k in keys) + " |"


def checks(d, folds, min_gain=None):
    """The rule's checks on differences `d` (candidate - baseline); `min_gain` adds the bar on
    pooled Dice. Prints each and returns whether all hold."""
    c = {} if min_gain is None else {f"pooled Dice >= +{min_gain}": d["dice"] >= min_gain}
    c.update({f"fold {f} not lower by > 0.015": d[f"fold{f}"] >= -0.015 for f in folds})
    c["detection accuracy not lower by > 0.005"] = d["accuracy"] >= -0.005
    c["mean ROC-AUC not lower by > 0.005"] = d["auc"] >= -0.005
    print()
    for name, ok in c.items():
        print(f"- {name}: {'holds' if ok else 'FAILS'}")
    return all(c.values())


def differences(label, d, keys):
    """The differences line."""
    print(f"differences ({label}): " + ", ".join(f"{k} {d[k]:+.4f}" for k in keys))


def compared(title, base_name, base, cand_name, cand, folds=(1, 3)):
    """The table, the guards' checks and the differences line of a candidate against its
    baseline; returns the differences and whether the guards hold."""
    d, keys = tabled(title, base_name, base, cand_name, cand)
    guards = checks(d, folds)
    differences("candidate - baseline", d, keys)
    return d, guards


def finds_more(d):
    """The detection route of slice-loss-192 and empty-ratio-192 on differences `d`: detection
    accuracy +0.005 or more, mean ROC-AUC not lower, pooled Dice not lower by more than 0.005."""
    return d["accuracy"] >= 0.005 and d["auc"] >= 0 and d["dice"] >= -0.005


def replication_decision(d, guards):
    """The rule of plans that adopt nothing on one seed (stacked-small-gains-192,
    small-tumour-oversample-192) on differences `d` and the guards' verdict: pooled Dice +0.005
    or more, or the detection route, asks for a seed-43 replication; anything else: not
    adopted. Prints the route and the decision."""
    detection = finds_more(d)
    print(f"- detection route (accuracy >= +0.005, ROC-AUC not lower, Dice not lower by > 0.005): {'holds' if detection else 'fails'}")
    replicate = guards and (d["dice"] >= 0.005 or detection)
    print("DECISION:", "replicate with seed 43 (two-seed rule decides)" if replicate else "not adopted")


def one_seed_decision(base_name, base, cand_name, cand, folds=(1, 3), detection_route=False, time_route=False):
    """The one-seed rule of strong-augment-192, lr-5e-4-192 and ema-192: with the guards,
    pooled Dice +0.010 adopts for the refit, +0.005 to +0.010 asks for a seed-43 replication.
    `detection_route` (empty-ratio-192) also asks for the replication when detection accuracy
    gains >= 0.005 with ROC-AUC not lower and Dice not lower by more than 0.005. `time_route`
    (empty-ratio-quarter-192, a change that also saves training time) asks for it when every
    guard holds and Dice is not lower by more than 0.005.
    Prints the table, the checks and the decision."""
    d, guards = compared("recipe (seed 42)", base_name, base, cand_name, cand, folds)
    detection = detection_route and finds_more(d)
    if detection_route:
        print(f"- detection route (accuracy >= +0.005, ROC-AUC not lower, Dice not lower by > 0.005): {'holds' if detection else 'fails'}")
    time = time_route and guards and d["dice"] >= -0.005
    if time_route:
        print(f"- time route (every guard holds, Dice not lower by > 0.005): {'holds' if time else 'fails'}")
    if not guards or (d["dice"] < 0.005 and not detection and not time):
        print("DECISION: not adopted")
    elif d["dice"] >= 0.010:
        print("DECISION: adopted (pooled Dice >= +0.010): refit")
    elif d["dice"] >= 0.005:
        print("DECISION: replicate with seed 43 (pooled Dice +0.005 to +0.010)")
    elif detection:
        print("DECISION: replicate with seed 43 (the detection route)")
    else:
        print("DECISION: replicate with seed 43 (the time route)")


def v09(seed):
    """The committed results prefix of v0.9's validation networks of `seed` (42 or 43)."""
    return "models/experiments/focal-dice-192/results/fd" + ("" if seed == 42 else str(seed))


def against_v09(experiment, prefix, base_name, cand_name, seed=42, decide=True, detection_route=False, time_route=False):
    """An experiment's validation networks of one seed (its committed `results/PREFIX-val-pooled.json`
    and `PREFIX-largest-val-pooled.json`) against v0.9's recipe at the same seed
    (`focal-dice-192/results/fd-*` for 42, `fd43-*` for 43), on validation folds 1 + 3. Seed 42
    applies `one_seed_decision` (with its `detection_route`) unless `decide` is false; otherwise
    a measurement: the table and checks, no decision. Paths from the repository root."""
    against(experiment, prefix, v09(seed), base_name, cand_name, seed, decide, detection_route, time_route)


def against(experiment, prefix, base, base_name, cand_name, seed=42, decide=True, detection_route=False, time_route=False):
    """`against_v09` with another baseline: `base` is the results prefix of its validation
    networks of the same seed (e.g. `models/experiments/bce-dice-192/results/bd`)."""
    e = f"models/experiments/{experiment}/results"
    base_figures, cand = val_figures(base), val_figures(f"{e}/{prefix}")
    if seed == 42 and decide:
        one_seed_decision(base_name, base_figures, cand_name, cand, detection_route=detection_route, time_route=time_route)
    else:
        compared(f"recipe (seed {seed})", base_name, base_figures, cand_name, cand)


def two_seed_rule(rows, names, min_gain=0.005, each_seed=None, verdict=True):
    """focal-dice-192 addendum 2's two-seed rule on `rows` ({(recipe, seed): figures}, recipes
    "baseline" and "candidate", seeds 42 and 43; `names` labels the recipes): the table, then,
    with all four, the mean of the two seeds' pooled Dice higher by `min_gain` (0.005) or more
    with the guards on the two-seed means adopts for the next refit; `each_seed` (encoder-lr-192:
    0.005) also asks each seed's pooled Dice to be higher by that much. Returns the decision,
    None without all four; `verdict` false prints it as a report (a comparison that decides
    nothing)."""
    keys = ["dice", "fold1", "fold3", "accuracy", "auc"]
    table("recipe | seed", [(f"{names[r]} | {s}", f) for (r, s), f in sorted(rows.items())], keys)
    if len(rows) < 4:
        return None
    mean = {r: {k: (rows[(r, 42)][k] + rows[(r, 43)][k]) / 2 for k in keys} for r in names}
    for r in names:
        print(row(f"{names[r]} | mean", mean[r], keys))
    d = {k: mean["candidate"][k] - mean["baseline"][k] for k in keys}
    adopt = checks(d, (1, 3), min_gain=min_gain)
    differences("candidate - baseline, two-seed means", d, keys)
    by_seed = {s: {k: rows[("candidate", s)][k] - rows[("baseline", s)][k] for k in keys} for s in (42, 43)}
    for s in (42, 43) if each_seed is not None else (43,):
        print(f"seed {s} alone: " + ", ".join(f"{k} {by_seed[s][k]:+.4f}" for k in keys))
    if each_seed is not None:
        each = all(by_seed[s]["dice"] >= each_seed for s in (42, 43))
        print(f"- each seed's pooled Dice >= +{each_seed}: {'holds' if each else 'FAILS'}")
        adopt = adopt and each
    if verdict:
        print("DECISION:", "adopt for the next refit" if adopt else "not adopted")
    else:
        print("(reported: the rule's checks, no decision)")
    return adopt


def two_seed_against_v09(experiment, prefixes, base_name, cand_name):
    """`two_seed_rule` for an experiment's validation networks of seeds 42 and 43 (`prefixes`:
    their results/ prefixes) against v0.9's (`focal-dice-192/results/fd-*`, `fd43-*`), folds 1 + 3.
    Without all four evaluations: the table, no decision."""
    e = f"models/experiments/{experiment}/results"
    paths = {
        ("baseline", 42): v09(42), ("baseline", 43): v09(43),
        ("candidate", 42): f"{e}/{prefixes[0]}", ("candidate", 43): f"{e}/{prefixes[1]}",
    }
    rows = {
        k: val_figures(p)
        for k, p in paths.items()
        if all(os.path.exists(f) for f in val_files(p))
    }
    if two_seed_rule(rows, {"baseline": base_name, "candidate": cand_name}) is None:
        print(f"\nonly {len(rows)} of 4 evaluations present: no decision")


DETECTION_RULE = "segmentation: cleaned-mask tumour pixels, ranked with slice context"


def misclassified(prefix, folds=(1, 3)):
    """The shipped detection rule's misclassified slices of an experiment's validation networks
    (`PREFIX-largest-val-foldF-detection.json`, the largest-3D clean-up), over `folds`."""
    out = []
    for fold in folds:
        det = json.load(open(f"{prefix}-largest-val-fold{fold}-detection.json"))
        (c,) = [c for c in det["candidates"] if c["name"] == DETECTION_RULE]
        out += c["report"]["misclassified"]
    return out


RERUNS = "models/experiments/rerun-noise-bce-dice-192/results"


def two_seed_against_zen4_reruns(experiment, prefixes, cand_name):
    """encoder-lr-192's rule for an experiment's validation networks of seeds 42 and 43
    (`prefixes`: their results/ prefixes) against v0.10's recipe rerun on the same machine type
    (rerun-noise-bce-dice-192's `rn-*`, `rn43-*`), folds 1 + 3: `two_seed_against` with that
    baseline."""
    e = f"models/experiments/{experiment}/results"
    two_seed_against(
        (f"{RERUNS}/rn", f"{RERUNS}/rn43"),
        "v0.10's recipe (reruns, same machine type)",
        (f"{e}/{prefixes[0]}", f"{e}/{prefixes[1]}"),
        cand_name,
    )


def two_seed_against(base, base_name, cand, cand_name, verdict=True):
    """encoder-lr-192's rule: `two_seed_rule` with a two-seed mean of +0.010 and +0.005 at each
    seed, of the validation networks of seeds 42 and 43 under the results prefixes `cand` against
    those under `base` (folds 1 + 3, paths from the repository root), then each side's missed
    tumour and false-positive slices under the shipped detection rule. Without all four
    evaluations: the table, no decision. Returns the decision (None without all four); `verdict`
    as `two_seed_rule`'s."""
    paths = {("baseline", 42): base[0], ("baseline", 43): base[1], ("candidate", 42): cand[0], ("candidate", 43): cand[1]}
    rows = {k: val_figures(p) for k, p in paths.items() if all(os.path.exists(f) for f in val_files(p))}
    names = {"baseline": base_name, "candidate": cand_name}
    decision = two_seed_rule(rows, names, min_gain=0.010, each_seed=0.005, verdict=verdict)
    if decision is None:
        print(f"\nonly {len(rows)} of 4 evaluations present: no decision")

    print("\n| shipped detection rule, folds 1 + 3 | seed | missed tumour slices | false-positive slices |")
    print("| --- | --- | --- | --- |")
    for (recipe, seed), prefix in sorted(paths.items()):
        if (recipe, seed) in rows:
            e = misclassified(prefix)
            print(f"| {names[recipe]} | {seed} | {sum(m['truth'] for m in e)} | {sum(not m['truth'] for m in e)} |")
    return decision
