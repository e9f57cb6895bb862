"""``python -m chatbot report``: what the trained bot does, on the test split.

Writes ``report.md``, ``metrics.json`` and ``attention.png`` into the artefacts folder:
the metrics table (1-of-10 and 1-of-2 Recall@k of the model and of TF-IDF, Recall@k
against the full index), the A/B simulation, the latency of each stage of a reply
measured in this process, the HTTP figures of the last ``make bench`` when there are
some (``load.json``), and a figure of what the matching attends to.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def _last_user_turn(context) -> str:
    users = [t.partition(" ")[2] for t in context if t.startswith("USER:")]
    return users[-1] if users else context[-1]


def latency(retriever, messages, repeat: int = 1) -> dict:
    """Milliseconds per stage (and in all) of ``retriever.reply`` over ``messages``:
    p50 and p99 of each."""
    stages, totals = {}, []
    retriever.reply(messages[0])  # warm-up
    for _ in range(repeat):
        for m in messages:
            t0 = time.perf_counter()
            r = retriever.reply(m)
            totals.append((time.perf_counter() - t0) * 1000)
            for k, v in r.timings.items():
                stages.setdefault(k, []).append(v)
    out = {k: {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99))}
           for k, v in stages.items()}  # fmt: skip
    out["total"] = {
        "p50": float(np.percentile(totals, 50)),
        "p99": float(np.percentile(totals, 99)),
    }
    return out


def attention_figure(retriever, messages, path: Path) -> None:
    """One row per message: its words shaded by the attention of the top reply."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(messages), 1, figsize=(11, 1.5 * len(messages)))
    for ax, message in zip(np.atleast_1d(axes), messages):
        r = retriever.reply(message, k=1)
        words = [w for w, _ in r.attention]
        weights = np.array([a for _, a in r.attention])
        ax.imshow(weights[None], cmap="Blues", aspect="auto", vmin=0, vmax=max(weights.max(), 1e-9))
        ax.set_xticks(range(len(words)), words, rotation=45, ha="right", fontsize=8)
        ax.set_yticks([])
        ax.set_title(f"reply: {r.responses[0][0][:90]}", fontsize=9, loc="left")
    fig.suptitle("Which words of the message the matching attends to (top reply)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(folder: Path, *, fast: bool = False, threads: int = 2) -> Path:
    import torch

    from chatbot import parts as parts_module
    from chatbot.baseline import TfidfRetriever
    from chatbot.data import load_pairs
    from chatbot.evaluate import bootstrap_ab, full_index_recall, one_of_n_report
    from chatbot.index import Retriever, build_index
    from chatbot.train import encode_responses

    torch.set_num_threads(threads)
    parts = parts_module.load()
    retriever = Retriever.load(folder, parts.attention_match)
    model, vocab = retriever.model, retriever.vocab
    data = load_pairs()
    test = data["test"]
    tfidf = TfidfRetriever().fit(data["train"].subset(range(4_000)) if fast else data["train"])
    limit = 500 if fast else None
    scores = one_of_n_report(model, vocab, tfidf, test, parts.recall_at_k, limit=limit)
    success = scores.pop("success")
    ab = bootstrap_ab(success["model"], success["TF-IDF"])

    def factory(texts):
        return Retriever(model, vocab, texts, build_index(encode_responses(model, vocab, texts)))

    full = full_index_recall(
        factory, test, n_candidates=1_000 if fast else 10_000, rows=100 if fast else 2_000
    )
    rng = np.random.default_rng(0)
    rows = rng.choice(len(test), 100 if fast else 1_000, replace=False)
    messages = [_last_user_turn(test.contexts[i]) for i in rows]
    torch.set_num_threads(1)  # as the server runs
    lat = latency(retriever, messages)
    load_path = folder / "load.json"
    load = json.loads(load_path.read_text()) if load_path.is_file() else None
    attention_figure(retriever, messages[:3], folder / "attention.png")
    metrics = {"one_of_n": scores, "full_index": full, "ab": ab, "latency_ms": lat,
               "http": load, "fast": fast}  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))

    m, t = scores["model"], scores["TF-IDF"]
    lines = [
        "# The chatbot, on the SGD test split",
        "",
        f"The bot retrieves the dialogue's own response {m['1 in 10']['R@1']:.0%} of the time "
        f"in top-1 and {m['1 in 10']['R@3']:.0%} in top-3, among 10 candidates "
        f"({scores['n']:,} test contexts; TF-IDF: {t['1 in 10']['R@1']:.0%} and "
        f"{t['1 in 10']['R@3']:.0%}).",
        "",
        "| scorer | 1 in 10 R@1 | R@2 | R@5 | 1 in 2 R@1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in ("model", "model first stage", "TF-IDF"):
        s = scores[name]
        lines.append(
            f"| {name} | {s['1 in 10']['R@1']:.3f} | {s['1 in 10']['R@2']:.3f} | "
            f"{s['1 in 10']['R@5']:.3f} | {s['1 in 2']['R@1']:.3f} |"
        )
    lines += [
        "",
        f"Against the full index ({full['candidates']:,} distinct test responses, "
        f"{full['n']:,} contexts): R@1 {full['R@1']:.3f}, R@5 {full['R@5']:.3f}, "
        f"R@10 {full['R@10']:.3f}.",
        "",
        f"A/B simulation (each context shown to one system at random; success = the true "
        f"response first of 10): model {ab['p_A']:.3f} (n = {ab['n_A']}), TF-IDF "
        f"{ab['p_B']:.3f} (n = {ab['n_B']}); difference {ab['difference']:+.3f}, bootstrap "
        f"95 % interval [{ab['ci95'][0]:+.3f}, {ab['ci95'][1]:+.3f}].",
        "",
        f"## Latency of one reply, in this process ({len(messages):,} messages, 1 thread)",
        "",
        "| stage | p50 ms | p99 ms |",
        "| --- | --- | --- |",
        *[f"| {k} | {v['p50']:.2f} | {v['p99']:.2f} |" for k, v in lat.items()],
    ]
    if load:
        lines += ["", "## Over HTTP, on loopback (the last `make bench`)", "",
                  "| load | requests | errors | req/s | p50 ms | p99 ms |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for name, r in load.items():
            if isinstance(r, dict) and "p99_ms" in r:
                lines.append(f"| {name.replace('_', ' ')} | {r['requests']:,} | {r['errors']} | "
                             f"{r['throughput_rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")  # fmt: skip
    lines += ["", "![attention](attention.png)", ""]
    if fast:
        lines.insert(1, "\n*FAST mode: a small model on a small part of the data.*")
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
