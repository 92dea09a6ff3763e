"""The paper's figures 1–3 (Wu et al. 2023, arXiv 2306.04933) with the packaged MiniLM.

    python -m infoprompt figures cmi --data-dir ../shared/data/SST-2 --out docs/figures/fig1_cmi.png
    python -m infoprompt figures landscape --data-dir ../shared/data/SST-2 \\
        --out docs/figures/fig2_landscape.png
    python -m infoprompt figures curves --runs runs/curves --out docs/figures/fig3_curves.png

Conventions: N examples, D hidden size, n_p prompts, K InfoNCE candidates, G grid points per axis.

- Fig. 1, CMI I(P; Z | X) of prompts and the mask representation given the input, per dev example.
  Estimator: an InfoNCE lower bound over prompts, Î_x = log K − NCE_x ≤ log K, with the bilinear
  critic s(P, z) = Pᵀ W z of the paper's losses (P the mean prompt vector). For an input x the mask
  state z = Z(x, P_x) is shown with K candidate prompts: P_x and K − 1 sets of random vocabulary
  embeddings; NCE_x = logsumexp_k s(P_k, z) − s(P_x, z). X is the same inside each term (the
  conditioning). W is trained once, on random prompt sets over the training inputs
  (``fit_critic``), and is the same for every kind of prompt; the bound is read on dev inputs
  against held-out random sets. It says how well the prompt can be read back from Z given X.
  ``--unit-prompts``: the critic sees P / ‖P‖, a control for the norm of the prompts.
- Fig. 2, loss landscapes of one prompt token p₁ over the top-2 principal components u₁, u₂ of the
  token embeddings: log10 L(c + a u₁ + b u₂), averaged over 20 held-out dev examples, with the
  trajectory of p₁ (mean over the same examples) during training with γ = 0.05 and γ = 0.
- Fig. 3, learning curves: the reported set's main metric against the step, read from runs trained
  with ``--test-curve`` (a curve labelled so, never used to select anything), one line per method.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from infoprompt.config import METHOD_FIELDS, ConfigError, RunConfig
from infoprompt.data import TASKS, DataError, Example, draw, load_split
from infoprompt.model import load_backbone
from infoprompt.session import Session, Split, build_cache, build_session, collate
from infoprompt.train import TrainLoop, evaluate

Setup = Session  # a model with its encoded splits, ready for ``run_steps`` and the figures

# Handcrafted prompts (Fig. 1): four words each, written for SST-2 and for MRPC (their
# input embeddings take the n_p = 4 prompt slots, in order).
HANDCRAFTED = {"handcrafted (SST-2)": "the sentiment is :", "handcrafted (MRPC)": "do they agree ?"}


# ---------------------------------------------------------------------------------------------
# Setting up and training a model in memory
# ---------------------------------------------------------------------------------------------


def build(config: RunConfig, train_ex: list[Example], dev_ex: list[Example], backbone) -> Setup:
    """The session of ``config`` on a copy of ``backbone`` = (tokenizer, encoder), whose
    validation slot holds ``dev_ex`` (the figures read the dev set, labelled so); P', Z' are
    cached for every method, since Fig. 1 needs Z' for all."""
    spec = TASKS[config.task]
    s = build_session(config, backbone, examples=(spec, train_ex, dev_ex), log=lambda line: None)
    for split in (s.train_set, s.val_set):
        if split.cache is None:
            split.cache = build_cache(s, split)
    return s


def run_steps(setup: Setup, n_steps: int, on_step=None) -> None:
    """``n_steps`` training steps of ``train.TrainLoop`` (AdamW, warm-up, linear decay over the
    whole epochs that cover ``n_steps``); ``on_step(step)`` after each step (it may evaluate: the model is put back in train mode)."""
    spe = math.ceil(len(setup.train_set.encoded) / setup.config.batch_size)
    config = replace(setup.config, epochs=max(1, math.ceil(n_steps / spe)))
    s = setup
    loop = TrainLoop(replace(s, config=config), ".", log=lambda line: None)
    s.model.train(True)
    for step in range(n_steps):
        epoch, k = divmod(step, loop.steps_per_epoch)
        loop.step(loop.batches(epoch)[k])
        if on_step is not None:
            on_step(step + 1)
            s.model.train(True)
    s.model.train(False)


# ---------------------------------------------------------------------------------------------
# Fig. 1: CMI of prompts and mask representation
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def prompts_and_states(
    setup: Setup, split: Split, prompts=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """P = mean prompt vector (N, D) and Z = prompted mask state (N, D) of every example, with the
    model's own prompts or, if given, the fixed ``prompts`` (n_p, D) for every example."""
    m, size = setup.model.train(False), setup.config.eval_batch_size
    ps, zs = [], []
    for i in range(0, len(split.encoded), size):
        idx = list(range(i, min(i + size, len(split.encoded))))
        b = collate(split, idx, setup.pad, setup.accelerator.device)
        if prompts is None:
            pr = m.make_prompts(len(idx), b.get("pooled"))  # (B, n_p, D)
        else:
            pr = prompts.expand(len(idx), -1, -1)
        ps.append(pr.float().mean(1).cpu())
        z = m.encode(b["input_ids"], b["attention_mask"], b["mask_pos"], pr, b["prompt_pos"])
        zs.append(z.float().cpu())
    return torch.cat(ps), torch.cat(zs)


def random_prompts(embeddings: torch.Tensor, n_sets: int, n_p: int, seed: int) -> torch.Tensor:
    """``n_sets`` sets of n_p vocabulary embeddings drawn uniformly (n_sets, n_p, D)."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(len(embeddings), (n_sets, n_p), generator=gen)
    return embeddings[rows].detach().float()


def reference_states(setup: Setup, split: Split, prompt_sets: torch.Tensor) -> torch.Tensor:
    """Z(x, r_s): the mask state of every example under each prompt set r_s
    (prompt_sets (S, n_p, D)) → (N, S, D)."""
    return torch.stack([prompts_and_states(setup, split, r)[1] for r in prompt_sets], 1)


def prompt_scores(w: torch.Tensor, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Bilinear critic s(P, z) = Pᵀ W z for K candidate prompts p (N, K, D) and z (N, D) → (N, K)."""
    return torch.einsum("nkd,de,ne->nk", p, w, z)


def nce_over_prompts(w, p_pos, p_neg, z) -> torch.Tensor:
    """NCE_x = logsumexp_k s(P_k, z) − s(P_x, z) (N,): which of K prompts produced z = Z(x, P_x)?

    p_pos (N, D) the prompt used, p_neg (N, K − 1, D) other prompts, z (N, D).
    """
    s = prompt_scores(w, torch.cat([p_pos[:, None], p_neg], 1), z)  # (N, K)
    return torch.logsumexp(s, 1) - s[:, 0]


def fit_critic(p_sets: torch.Tensor, z: torch.Tensor, k: int, steps: int, lr=1e-2, wd=0.1, seed=0):
    """W (D, D) of the critic, trained on random prompts only: for every input x and step, K of
    the S prompt sets are drawn, the first is the one whose Z(x, ·) is shown, and AdamW minimises
    the mean NCE_x. p_sets (S, D) mean prompt vectors, z (N, S, D) = Z(x_n, r_s). W = 0 at the
    start (the bound is 0 there)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.zeros(p_sets.shape[1], p_sets.shape[1], requires_grad=True)
    opt = torch.optim.AdamW([w], lr=lr, weight_decay=wd)
    n, s = z.shape[:2]
    for _ in range(steps):
        idx = torch.rand(n, s, generator=gen).argsort(1)[:, :k]  # (N, K) distinct sets per input
        zz = z[torch.arange(n), idx[:, 0]]  # (N, D)
        loss = nce_over_prompts(w, p_sets[idx[:, 0]], p_sets[idx[:, 1:]], zz).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


@torch.no_grad()
def cmi_bound(w, p, z, p_ref) -> torch.Tensor:
    """Per-example lower bound Î_x = log K − NCE_x (N,) ≤ log K, negatives the K − 1 reference
    prompts p_ref (K − 1, D) (the same for every example), positive the prompt P_x (N, D)."""
    neg = p_ref.expand(len(p), -1, -1)  # (N, K − 1, D)
    return math.log(p_ref.shape[0] + 1) - nce_over_prompts(w, p, neg, z)


def phrase_embeddings(tokenizer, embeddings: torch.Tensor, phrase: str, n: int) -> torch.Tensor:
    """Input embeddings (n, D) of the first n tokens of ``phrase`` (repeated if it is shorter)."""
    ids = tokenizer(phrase, add_special_tokens=False)["input_ids"]
    return embeddings[[ids[i % len(ids)] for i in range(n)]].detach().float()


def method_config(base: RunConfig, method: str, **kw) -> RunConfig:
    """``base`` with another method and that method's defaults (fields, learning rate)."""
    return replace(base, method=method, lr=None, **dict.fromkeys(METHOD_FIELDS), **kw)


def cmi_distributions(
    backbone, train_ex, dev_ex, base: RunConfig, steps: int, k: int, unit=False, **critic
):
    """({prompt kind: per-dev-example CMI bound (N_dev,)}, {kind: mean ‖P‖}) for InfoPrompt and
    WARP trained ``steps`` steps, a random prompt set and the two handcrafted prompts (the last
    three untrained).

    The critic is trained on the training inputs under ``critic["sets"]`` random prompt sets; the
    bound is read on the dev inputs against K − 1 further random sets (never seen in training).
    ``unit``: the critic sees P / ‖P‖ (every candidate), so that a prompt of larger norm does not
    get a larger score for that reason alone (its effect on Z is kept).
    """
    scale = (lambda p: p / p.norm(dim=-1, keepdim=True)) if unit else (lambda p: p)
    emb = backbone[1].get_input_embeddings().weight
    n_sets, n_p = critic.pop("sets", 96), base.n_prompts
    critic["steps"] = critic.pop("critic_steps", 300)
    train_sets = random_prompts(emb, n_sets, n_p, base.seed + 1)  # (S, n_p, D)
    held_out = random_prompts(emb, k, n_p, base.seed + 2)  # K − 1 negatives + 1 'random' kind
    warp = build(method_config(base, "warp"), train_ex, dev_ex, backbone)
    w = fit_critic(
        scale(train_sets.mean(1)), reference_states(warp, warp.train_set, train_sets), k, **critic
    )
    fixed = {"random prompts": held_out[-1]}
    for name, phrase in HANDCRAFTED.items():
        fixed[name] = phrase_embeddings(backbone[0], emb, phrase, n_p)
    kinds = {name: prompts_and_states(warp, warp.val_set, v) for name, v in fixed.items()}
    for method in ("infoprompt", "warp"):
        s = (
            warp
            if method == "warp"
            else build(method_config(base, method), train_ex, dev_ex, backbone)
        )
        run_steps(s, steps)
        kinds[method] = prompts_and_states(s, s.val_set)
    order = ("infoprompt", "warp", "random prompts", *HANDCRAFTED)
    ref = scale(held_out[:-1].mean(1))  # (K − 1, D)
    bounds = {n: cmi_bound(w, scale(kinds[n][0]), kinds[n][1], ref).numpy() for n in order}
    norms = {n: kinds[n][0].norm(dim=1).mean().item() for n in order}
    norms["(reference sets)"] = held_out[:-1].mean(1).norm(dim=1).mean().item()
    return bounds, norms


def plot_cmi(values: dict, k: int, path: str, note: str = "") -> None:
    """Violin plot of the per-example CMI bounds, one violin per kind of prompt."""
    import matplotlib.pyplot as plt

    names = list(values)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.violinplot([values[n] for n in names], showmeans=True, showextrema=False)
    for i, n in enumerate(names, 1):
        ax.text(i, math.log(k) + 0.1, f"mean {np.mean(values[n]):.2f}", ha="center", fontsize=8)
    low = min(float(np.min(v)) for v in values.values())
    ax.set_ylim(min(low, 0) - 0.2, math.log(k) + 0.45)
    ax.axhline(math.log(k), ls="--", c="gray", lw=0.8, label=f"log K = {math.log(k):.2f}")
    ax.set_xticks(range(1, len(names) + 1), names, fontsize=8)
    ax.set_ylabel("Î(P; Z | X) = log K − NCE  (nats)")
    ax.set_title(
        "Fig. 1 · CMI of prompts and mask representation, per dev example " + note, fontsize=9
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Fig. 2: loss landscapes over the top-2 principal components of the token embeddings
# ---------------------------------------------------------------------------------------------


def embedding_pcs(weight: torch.Tensor, n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-n principal directions U (n, D) and variances λ (n,) of the embeddings (V, D):
    eigenvectors of C = (E − ē)ᵀ(E − ē) / V, largest eigenvalues first."""
    e = weight.detach().double()
    c = e - e.mean(0)
    vals, vecs = torch.linalg.eigh(c.T @ c / len(e))  # ascending
    return vecs[:, -n:].flip(1).T.float(), vals[-n:].flip(0).float()


@torch.no_grad()
def first_prompt(setup: Setup, split: Split, idx: list[int]) -> torch.Tensor:
    """p₁, the first prompt vector, averaged over the examples ``idx`` of ``split`` (D,)."""
    b = collate(split, idx, setup.pad, setup.accelerator.device)
    return setup.model.make_prompts(len(idx), b.get("pooled"))[:, 0].float().mean(0).cpu()


@torch.no_grad()
def point_losses(setup: Setup, batch: dict, p1: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """(L_pred, NCE_rep) of ``batch`` with prompt slot 1 of every example set to p1 (D,); the other
    slots keep the model's prompts. The noise of NCE_rep is drawn from ``seed``."""
    m = setup.model
    prompts = m.make_prompts(len(batch["input_ids"]), batch.get("pooled")).clone()  # (B, n_p, D)
    prompts[:, 0] = p1
    z = m.encode(
        batch["input_ids"], batch["attention_mask"], batch["mask_pos"], prompts, batch["prompt_pos"]
    )
    pred = F.cross_entropy(m.head(z).float(), batch["labels"]).item()
    torch.manual_seed(seed)
    rep = (
        m.rep_mi(prompts.float().mean(1), z, batch["z_plain"]).item() if m.rep_mi else float("nan")
    )
    return pred, rep


def loss_grid(setup: Setup, split: Split, idx: list[int], center, u, coords: np.ndarray):
    """L_pred and NCE_rep (G, G), mean over the examples ``idx`` of ``split``, at
    p₁ = center + a u₁ + b u₂ with a = coords[j], b = coords[i]."""
    batch = collate(split, idx, setup.pad, setup.accelerator.device)
    setup.model.train(False)
    pred, rep = np.zeros((len(coords),) * 2), np.zeros((len(coords),) * 2)
    for i, b in enumerate(coords):
        for j, a in enumerate(coords):
            pred[i, j], rep[i, j] = point_losses(setup, batch, center + a * u[0] + b * u[1])
    return pred, rep


def log10(grid: np.ndarray) -> np.ndarray:
    """log10 of a loss grid (losses reach ~1e-7 once a term is solved; 1e-12 avoids log 0)."""
    return np.log10(grid + 1e-12)


def roughness(grid: np.ndarray) -> float:
    """Mean |discrete Laplacian| of a grid over its range (0 for a plane; larger = rougher):
    mean |g[i+1,j] + g[i−1,j] + g[i,j+1] + g[i,j−1] − 4 g[i,j]| / (max g − min g).
    The figure applies it to log10 of the losses, as drawn."""
    lap = grid[2:, 1:-1] + grid[:-2, 1:-1] + grid[1:-1, 2:] + grid[1:-1, :-2] - 4 * grid[1:-1, 1:-1]
    return float(np.abs(lap).mean() / max(np.ptp(grid), 1e-12))


def landscape_run(
    backbone, train_ex, dev_ex, config: RunConfig, steps: int, n_points: int, grid: int
):
    """Train ``config`` for ``steps`` steps recording p₁, the mean first prompt of the first
    ``n_points`` dev examples (held out: on the training examples every loss is ~0 after a few
    epochs); then the loss grids of the same examples around the last p₁ over the embeddings'
    top-2 PCs, over ±max(1.25 × the trajectory's extent, one standard deviation along PC 1)."""
    s = build(config, train_ex, dev_ex, backbone)
    idx = list(range(min(n_points, len(dev_ex))))
    path = [first_prompt(s, s.val_set, idx)]
    run_steps(s, steps, on_step=lambda _: path.append(first_prompt(s, s.val_set, idx)))
    u, lam = embedding_pcs(s.model.embed.weight)
    center = path[-1]
    traj = (torch.stack(path) - center) @ u.T  # (steps + 1, 2)
    span = max(1.25 * traj.abs().max().item(), lam[0].sqrt().item())
    coords = np.linspace(-span, span, grid)
    pred, rep = loss_grid(s, s.val_set, idx, center, u, coords)
    return {"coords": coords, "pred": pred, "rep": rep, "traj": traj.numpy()}


def plot_landscapes(runs: dict, path: str, note: str = "") -> None:
    """Rows: runs (γ values); columns: task loss and representation loss, with trajectories."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 2, figsize=(9, 4 * len(runs)), squeeze=False)
    for row, (name, r) in zip(axes, runs.items()):
        for ax, key, title in zip(
            row, ("pred", "rep"), ("task loss L_pred", "representation loss NCE_rep")
        ):
            g = log10(r[key])
            if np.isnan(g).all():  # β = 0: the run has no representation loss
                ax.text(0.5, 0.5, f"{name}: no NCE_rep", ha="center", va="center")
                ax.set_axis_off()
                continue
            cs = ax.contourf(r["coords"], r["coords"], g, levels=20, cmap="viridis")
            fig.colorbar(cs, ax=ax)
            ax.plot(r["traj"][:, 0], r["traj"][:, 1], "w.-", ms=2, lw=0.8)
            ax.plot(*r["traj"][0], "wo", ms=6, label="start")
            ax.plot(0, 0, "r*", ms=10, label="end")
            ax.set_title(f"{name}: log10 {title} (roughness {roughness(g):.3f})", fontsize=9)
            ax.set_xlabel("PC 1")
            ax.set_ylabel("PC 2")
        row[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(
        "Fig. 2 · loss landscape of prompt token p₁ over the token embeddings' top-2 PCs " + note,
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Fig. 3: learning curves
# ---------------------------------------------------------------------------------------------


def learning_curve(setup: Setup, steps: int, every: int) -> list[tuple[int, float]]:
    """(step, dev main metric) at step 0 and every ``every`` steps up to ``steps``."""
    s = setup

    def dev_score():
        metric = s.spec.main_metric
        return evaluate(s, s.val_set)[metric]

    curve = [(0, dev_score())]
    run_steps(
        s, steps, lambda t: curve.append((t, dev_score())) if t % every == 0 or t == steps else None
    )
    return curve


def curve_stats(curve: list[tuple[int, float]]) -> dict:
    """Best score, first step reaching 95 % of the way from the start to the best, and the std of
    the scores over the second half of the steps (lower = steadier)."""
    steps, acc = np.array(curve).T
    best = acc.max()
    reach = steps[np.argmax(acc >= acc[0] + 0.95 * (best - acc[0]))]
    return {
        "best": float(best),
        "step_95": int(reach),
        "late_std": float(acc[steps >= steps[-1] / 2].std()),
    }


def curve_band(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The band drawn around the mean of ``acc`` (runs, points): the 95 % t interval of the mean
    over runs with three runs or more, else the min–max range."""
    if len(acc) < 3:
        return acc.min(0), acc.max(0)
    from scipy import stats

    half = stats.t.ppf(0.975, len(acc) - 1) * acc.std(0, ddof=1) / np.sqrt(len(acc))
    return acc.mean(0) - half, acc.mean(0) + half


def plot_curves(curves: dict, path: str, note: str = "", ylabel: str = "") -> None:
    """Score against step, mean over runs with a band (``curve_band``), one line per method."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, per_seed in curves.items():
        steps = np.array(per_seed[0])[:, 0]
        acc = np.array([np.array(c)[:, 1] for c in per_seed])  # (seeds, points)
        ax.plot(steps, acc.mean(0), "o-", ms=3, label=f"{name} ({len(acc)} runs)")
        ax.fill_between(steps, *curve_band(acc), alpha=0.2)
    ax.set_xlabel("training step (batch 8)")
    ax.set_ylabel(ylabel or "reported-set main metric (--test-curve)")
    ax.set_title("Fig. 3 · learning curves " + note, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Command line: python -m infoprompt figures {cmi,landscape,curves}
# ---------------------------------------------------------------------------------------------


def _data(args) -> tuple[list[Example], list[Example]]:
    """The seed's few-shot training draw and a fixed random subset of ``--dev`` dev examples."""
    spec, train = load_split(args.task, args.data_dir, "train")
    _, dev = load_split(args.task, args.data_dir, "dev", labels=spec.labels)
    train, _ = draw(train, args.shots, 0, args.seed, len(spec.labels), label_names=spec.labels)
    if args.dev and args.dev < len(dev):
        dev = [dev[i] for i in np.random.default_rng(0).choice(len(dev), args.dev, replace=False)]
    return train, dev


def _base(args) -> RunConfig:
    return RunConfig(
        task=args.task,
        data_dir=args.data_dir,
        out="(in memory)",
        model=args.model,
        shots=args.shots,
        val_shots=0,
        seed=args.seed,
        max_len=args.max_len,
    )


def cmd_cmi(args) -> None:
    train, dev = _data(args)
    values, norms = cmi_distributions(
        load_backbone(args.model),
        train,
        dev,
        _base(args),
        args.steps,
        args.k,
        critic_steps=args.critic_steps,
        sets=args.sets,
        unit=args.unit_prompts,
    )
    for name, v in values.items():
        print(
            f"{name:22s} mean {np.mean(v):.3f}  median {np.median(v):.3f}  std {np.std(v):.3f}",
            end="",
        )
        print(f"  mean |P| {norms[name]:.3f}")
    print(f"mean |P| of the K - 1 reference prompt sets: {norms['(reference sets)']:.3f}")
    unit = ", P/|P|" if args.unit_prompts else ""
    plot_cmi(
        values, args.k, args.out, f"(K = {args.k}, {args.steps} steps, {len(dev)} dev ex.{unit})"
    )


# Fig. 2's arms: InfoPrompt, without the head loss, and without both MI losses (same rate)
LANDSCAPE_ARMS = {
    "β = 0.1, γ = 0.05": {},
    "β = 0.1, γ = 0": {"gamma": 0.0},
    "β = γ = 0": {"beta": 0.0, "gamma": 0.0},
}


def cmd_landscape(args) -> None:
    train, dev = _data(args)
    backbone, runs = load_backbone(args.model), {}
    for name, weights in LANDSCAPE_ARMS.items():
        config = replace(_base(args), **weights)
        runs[name] = r = landscape_run(
            backbone, train, dev, config, args.steps, args.points, args.grid
        )
        path = np.linalg.norm(np.diff(r["traj"], axis=0), axis=1).sum()
        print(
            f"{name}: roughness of log10 task loss {roughness(log10(r['pred'])):.4f}, "
            f"of log10 rep loss {roughness(log10(r['rep'])):.4f}; path length {path:.3f}"
        )
    plot_landscapes(runs, args.out, f"({args.steps} steps, {args.grid}×{args.grid} grid)")


def reported_curves(
    folders: list[str], split: str = "test"
) -> dict[str, list[list[tuple[int, float]]]]:
    """{method label: one (step, main metric) curve per run} from the finished runs under
    ``folders`` (``report.find_results``): ``split`` "test", the reported set's ``test_curve`` of
    runs trained with ``--test-curve``; "validation", the validation split every run scores."""
    from infoprompt.report import find_results

    key = "test_curve" if split == "test" else "val"
    curves: dict[str, list] = {}
    for run in find_results(folders):
        points = [p for p in run["curve"] if p.get(key)]
        if points:
            metric = run["main_metric"]
            curve = [(p["step"], p[key][metric]) for p in points]
            curves.setdefault(run["label"], []).append(curve)
    if not curves:
        how = "trained with --test-curve " if split == "test" else ""
        raise ConfigError(
            f"no finished run {how}under {', '.join(folders)}; train them with "
            "`python -m infoprompt train ...` (docs/figures.md)"
        )
    return curves


def cmd_curves(args) -> None:
    curves = reported_curves(args.runs, args.split)
    for name, per_run in curves.items():
        stats = [curve_stats(c) for c in per_run]
        means = {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}
        print(f"{name} ({len(stats)} runs), means: {means}")
    runs = ", ".join(f"{k} × {len(v)}" for k, v in curves.items())
    where = "reported set, --test-curve runs" if args.split == "test" else "validation split"
    plot_curves(curves, args.out, f"({where}: {runs})", ylabel=f"{where}: main metric")


def parser() -> argparse.ArgumentParser:
    from infoprompt.__main__ import HelpFormatter
    from infoprompt.config import default_model

    p = argparse.ArgumentParser(
        prog="python -m infoprompt figures",
        description="the paper's figures 1–3",
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(dest="figure", required=True)
    specs = {
        "cmi": (
            "Fig. 1: CMI of prompts and mask representation",
            cmd_cmi,
            {"steps": 120, "dev": 150},
        ),
        "landscape": (
            "Fig. 2: loss landscapes and trajectories",
            cmd_landscape,
            {"steps": 250, "dev": 32},
        ),
    }
    curves = sub.add_parser(
        "curves",
        help="Fig. 3: learning curves on the reported set, from --test-curve runs",
        description="Fig. 3: learning curves on the reported set, read from runs trained with "
        "--test-curve (their curves are labelled so and never select anything)",
        formatter_class=HelpFormatter,
    )
    curves.set_defaults(fn=cmd_curves)
    curves.add_argument("--runs", nargs="+", required=True, help="folders holding the runs")
    curves.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="'test': the reported set's --test-curve; 'validation': the validation split",
    )
    curves.add_argument("--out", required=True, help="PNG file to write")
    for name, (text, fn, d) in specs.items():
        q = sub.add_parser(
            name,
            help=text,
            description=text,
            formatter_class=HelpFormatter,
        )
        q.set_defaults(fn=fn)
        q.add_argument("--data-dir", required=True, help="the task's data folder")
        q.add_argument("--out", required=True, help="PNG file to write")
        q.add_argument(
            "--task", default="sst2", help="task whose data --data-dir holds (e.g. sst2)"
        )
        q.add_argument(
            "--model",
            default=default_model(),
            help="encoder: hub name or local folder (the packaged MiniLM by default)",
        )
        q.add_argument("--shots", type=int, default=64, help="training examples drawn by seed")
        q.add_argument("--seed", type=int, default=1, help="seed of the draw and initialisation")
        q.add_argument("--max-len", type=int, default=128, help="tokens per sequence incl. prompts")
        q.add_argument(
            "--threads",
            type=int,
            default=None,
            help="CPU threads for torch (intra-op) and BLAS, as train --threads; None = "
            "$OMP_NUM_THREADS if set, else physical cores // local processes",
        )
        q.add_argument("--steps", type=int, default=d["steps"], help="training steps")
        q.add_argument("--dev", type=int, default=d["dev"], help="dev examples used (0 = all)")
        if name == "cmi":
            q.add_argument("--k", type=int, default=32, help="K of the InfoNCE bound")
            q.add_argument(
                "--critic-steps", type=int, default=300, help="training steps of the MI critic"
            )
            q.add_argument("--sets", type=int, default=96, help="random prompt sets (critic)")
            q.add_argument(
                "--unit-prompts", action="store_true", help="critic sees P / |P| (norm control)"
            )
        if name == "landscape":
            q.add_argument("--points", type=int, default=20, help="examples averaged")
            q.add_argument("--grid", type=int, default=15, help="grid points per axis")
    return p


def main(argv: list[str] | None = None) -> int:
    from infoprompt.__main__ import set_threads

    args = parser().parse_args(argv)
    try:
        if hasattr(args, "threads"):  # the figures that train
            set_threads(args.threads)
        args.fn(args)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0
