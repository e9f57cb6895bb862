"""``python -m chatbot COMMAND``: train, index, serve, report.

    python -m chatbot train      # the dual encoder, on SGD's training split
    python -m chatbot index      # 10,000 candidate responses into a FAISS index
    python -m chatbot serve      # the HTTP API and the rating page on 127.0.0.1:8000
    python -m chatbot report     # test metrics, latency and the attention figure

Everything is read from and written to one folder, ``exports/chatbot`` (or
``$CHATBOT_DIR``; ``--dir`` on any command). The model code is the project notebook's
export (``exports/chatbot_parts.py``); ``WORKBOOK_FAST=1`` (or ``--fast``) trains and
scores a small part of the data, for a quick check that everything runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

N_CANDIDATES = 10_000


def _fast(args) -> bool:
    from utils import env

    return bool(args.fast) or env.fast()


def cmd_train(args) -> int:
    import torch

    from chatbot import index as ix
    from chatbot import parts as parts_module
    from chatbot.data import load_pairs
    from chatbot.model import DualEncoder
    from chatbot.text import Vocab
    from chatbot.train import fit

    parts = parts_module.load()
    torch.set_num_threads(args.threads)
    data = load_pairs(progress=True)
    train = data["train"]
    fast = _fast(args)
    if fast:  # as the project notebook's FAST mode
        train = train.subset(range(min(len(train), 4_000)))
        args.E, args.H, args.batch_size = 32, 32, 32
    args.steps = args.steps or (40 if fast else 1_000)
    vocab = Vocab.build(train.context_tokens() + train.response_tokens(), min_count=2)
    torch.manual_seed(args.seed)
    model = DualEncoder(len(vocab), args.E, args.H, match=parts.attention_match)
    print(f"{len(train):,} training pairs, {len(vocab):,} words, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters")  # fmt: skip
    t0 = time.perf_counter()
    history = fit(
        model, train, vocab, parts, steps=args.steps,
        seconds=None if args.minutes is None else args.minutes * 60,
        batch_size=args.batch_size, negatives=args.negatives, lr=args.lr, seed=args.seed,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    ix.save_model(model, vocab, args.dir)
    (args.dir / "history.json").write_text(json.dumps({**history, "train_seconds": seconds}))
    print(f"[metric] chatbot training seconds: {seconds:.0f}")
    print(f"saved the model in {args.dir}; next: python -m chatbot index")
    return 0


def cmd_index(args) -> int:
    import numpy as np
    import torch

    from chatbot import index as ix
    from chatbot import parts as parts_module
    from chatbot.data import load_pairs
    from chatbot.evaluate import candidate_texts

    torch.set_num_threads(args.threads)
    model, vocab = ix.load_model(args.dir, parts_module.load().attention_match)
    data = load_pairs()
    texts = candidate_texts(data["train"], args.candidates)
    t0 = time.perf_counter()
    index = ix.write_index(model, vocab, texts, args.dir)
    print(f"indexed {index.ntotal:,} candidate responses in {time.perf_counter() - t0:.1f} s")
    retriever = ix.Retriever(model, vocab, texts, index)
    # the rating page: 100 test conversations with the bot's reply
    test = data["test"]
    rows = sorted(np.random.default_rng(0).choice(len(test), 100, replace=False))
    conversations = [
        {"id": n, "context": list(test.contexts[i]),
         "reply": retriever.reply_turns(test.contexts[i], k=1).responses[0][0]}
        for n, i in enumerate(rows)
    ]  # fmt: skip
    (args.dir / "conversations.json").write_text(json.dumps(conversations, indent=1))
    print(f"wrote {args.dir / 'conversations.json'}; next: python -m chatbot serve")
    return 0


def cmd_serve(args) -> int:
    import faiss
    import torch
    import uvicorn

    from chatbot import index as ix
    from chatbot.app import create_app

    # one thread each: a batch is small, and spare cores go to HTTP (uvicorn uses uvloop
    # and httptools when they are installed, as requirements.txt installs them)
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        retriever = ix.Retriever.load(args.dir)
    except (ix.ArtefactsMissingError, RuntimeError) as e:
        print(f"cannot start: {e}", file=sys.stderr)
        return 2
    conv_path = args.dir / "conversations.json"
    conversations = json.loads(conv_path.read_text()) if conv_path.is_file() else []
    app = create_app(
        ix.MicroBatcher(retriever),  # concurrent requests answered in batches
        ratings_path=args.dir / "ratings.sqlite",
        conversations=conversations,
    )
    print(f"serving {retriever.n_candidates:,} candidates on http://{args.host}:{args.port} "
          "(POST /reply, the rating page at /rate)")  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_report(args) -> int:
    from chatbot.report import write_report

    torch_threads = args.threads
    path = write_report(args.dir, fast=_fast(args), threads=torch_threads)
    print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    from chatbot.index import artefacts_dir

    parser = argparse.ArgumentParser(prog="python -m chatbot", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, default=None, help="the artefacts folder")
    common.add_argument("--fast", action="store_true", help="a small run (as WORKBOOK_FAST=1)")
    common.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    p = sub.add_parser("train", parents=[common], help="train the dual encoder")
    p.add_argument("--steps", type=int, default=None, help="default 1,000 (FAST: 40)")
    p.add_argument("--minutes", type=float, default=None, help="stop training after this long")
    p.add_argument("--E", type=int, default=128)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("index", parents=[common], help="build the FAISS index")
    p.add_argument("--candidates", type=int, default=N_CANDIDATES)
    p = sub.add_parser("serve", parents=[common], help="start the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    sub.add_parser("report", parents=[common], help="write the report")
    args = parser.parse_args(argv)
    args.dir = Path(args.dir or artefacts_dir())
    args.dir.mkdir(parents=True, exist_ok=True)
    return {"train": cmd_train, "index": cmd_index, "serve": cmd_serve, "report": cmd_report}[
        args.command
    ](args)


if __name__ == "__main__":
    sys.exit(main())
