"""Drawing the paper's figures 1–3 from the experiments' numbers (matplotlib, imported on use)."""

from __future__ import annotations

import math

import numpy as np

from infoprompt.fig_landscape import log10, roughness


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
