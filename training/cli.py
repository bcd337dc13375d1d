"""The `attnviz` command.

``attnviz train <model-id>`` reproduces a shipped checkpoint from nothing;
``attnviz evaluate <model-id>`` measures a trained translator again into its card;
``attnviz import SRC --id ID --out DIR`` converts a Hugging Face checkpoint into one of ours;
``attnviz export --model ID --text "..." --out page.html`` writes one offline HTML page.
"""

from __future__ import annotations

import argparse
import json
import sys

from training.recipes import RECIPES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnviz")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model from its recipe and write its checkpoint")
    t.add_argument("model_id", choices=sorted(RECIPES))
    t.add_argument("--out", help="output folder (default: checkpoints/<model-id>)")
    t.add_argument("--steps", type=int, help="override the recipe's number of steps")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument(
        "--snapshots",
        type=int,
        default=0,
        metavar="N",
        help="keep N snapshots of the run (denser where the loss moves) in OUT/snapshots, "
        "each head's induction and previous-token score measured on each",
    )
    t.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch's choice). The shipped checkpoints were trained with "
        "1, which reproduces them bit for bit and is the fastest on a busy machine.",
    )
    e = sub.add_parser(
        "evaluate",
        help="measure a trained translator again and write the figures into its card",
        description="Re-measure a translator's metrics (exact match on validation, held-out "
        "and role-swap pairs, the lecture sentences; an RNN's gradient norms) with this "
        "evaluation code, and its comparison's, and write them into its card.json. Its "
        "training record (recipe, wall time, loss curve, timing) is kept.",
    )
    e.add_argument("model_id", choices=sorted(r.model_id for r in RECIPES.values()))
    e.add_argument("--path", help="checkpoint folder (default: checkpoints/<model-id>)")
    a = sub.add_parser(
        "attach-snapshots",
        help="ship the snapshots of a run with the checkpoint of the same recipe",
        description="Copy RUN/snapshots (from `attnviz train <id> --out RUN --snapshots N`) into "
        "CHECKPOINT/snapshots, measure them again, record whether the run's last weights are the "
        "checkpoint's, and say on CHECKPOINT/card.json when the induction heads formed.",
    )
    a.add_argument("run", metavar="RUN", help="the run's output folder")
    a.add_argument("checkpoint", metavar="CHECKPOINT", help="e.g. checkpoints/induction-2l")
    sub.add_parser("recipes", help="list the recipes")
    i = sub.add_parser(
        "import",
        help="convert a Hugging Face checkpoint (safetensors) or a GGUF file into DIR/ID",
        description="Convert a Hugging Face checkpoint into attnviz's format (config.json, "
        "model.safetensors, tokenizer.json, card.json) in DIR/ID. SRC is a local folder with "
        "config.json, *.safetensors and tokenizer.json, a .gguf file (or a folder holding "
        "one: dequantized to float32), or a hub id (needs the network). "
        "Supported: BERT, RoBERTa, DistilBERT, GPT-2, Llama, Mistral, Qwen2, BART, Marian; "
        "from GGUF: Llama, Mistral, Qwen2, GPT-2. "
        "Pickle (.bin) weights are refused; no code from the checkpoint ever runs.",
    )
    i.add_argument("src", metavar="SRC", help="checkpoint folder, .gguf file or hub id (e.g. gpt2)")
    i.add_argument(
        "--id", required=True, dest="model_id", metavar="ID", help="the model id to serve it as"
    )
    i.add_argument(
        "--out", required=True, metavar="DIR", help="the checkpoint folder to write into"
    )
    i.add_argument("--force", action="store_true", help="replace DIR/ID if it exists")
    i.add_argument(
        "--memory-budget-mb",
        type=int,
        metavar="MB",
        help="refuse a GGUF whose float32 weights are larger (default: the server's "
        "ATTNVIZ_MEMORY_BUDGET_MB)",
    )
    e = sub.add_parser(
        "export",
        help="write one HTML page of a model's attention that opens from disk, offline",
        description="Write one self-contained HTML file (no server, nothing fetched: it opens "
        "from file:// in any browser) showing MODEL's attention on TEXT, as attnviz.show does "
        "in a notebook. The page states the model, the input and the attnviz version.",
    )
    e.add_argument("--model", required=True, help="a shipped model id or a checkpoint folder")
    e.add_argument("--text", required=True, help="the input sentence (a translator's source)")
    e.add_argument("--target", help="seq2seq: the translation to teacher-force")
    e.add_argument("--view", default="explorer", choices=["heads", "grid", "heatmap", "explorer"])
    e.add_argument("--layer", type=int, default=0, help="the layer shown first")
    e.add_argument("--head", type=int, default=0, help="the head shown first")
    e.add_argument("--site", help="encoder.self, decoder.self or decoder.cross")
    e.add_argument("--out", required=True, help="the .html file to write")
    args = parser.parse_args(argv)

    if args.command == "import":
        return _import(args)
    if args.command == "export":
        return _export(args)
    if args.command == "evaluate":
        from training.train import reevaluate

        card = reevaluate(args.model_id, args.path)
        json.dump(card["metrics"], sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    if args.command == "attach-snapshots":
        from training.snapshots import attach

        try:
            print(json.dumps(attach(args.run, args.checkpoint), indent=2))
        except ValueError as e:
            print(f"attnviz attach-snapshots: {e}", file=sys.stderr)
            return 2
        return 0
    if args.command == "recipes":
        for r in RECIPES.values():
            print(f"{r.model_id:16} {r.objective:10} {r.steps:6} steps  {r.title}")
        return 0
    import torch

    from training.train import ROOT, train

    if args.threads:
        torch.set_num_threads(args.threads)

    out = args.out or ROOT / "checkpoints" / args.model_id
    card = train(args.model_id, out, steps=args.steps, device=args.device, snapshots=args.snapshots)
    json.dump(
        {"wall_time_seconds": card["wall_time_seconds"], "metrics": card["metrics"]},
        sys.stdout,
        indent=2,
        ensure_ascii=False,
    )
    print(f"\nwrote {out}")
    return 0


def _import(args: argparse.Namespace) -> int:
    import time

    from app.config import Settings
    from models.convert import ConversionError, import_checkpoint

    budget_mb = args.memory_budget_mb or Settings().memory_budget_mb
    start = time.perf_counter()
    try:
        path = import_checkpoint(
            args.src, args.model_id, args.out, overwrite=args.force, max_bytes=budget_mb << 20
        )
    except ConversionError as e:
        print(f"attnviz import: {e}", file=sys.stderr)
        return 2
    card = json.loads((path / "card.json").read_text())
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s: {card['description']}")
    print(f"parameters: {card['parameters']}")
    for line in card["conversion"]["notes"]:
        print(f"note: {line}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import attnviz

    try:
        path = attnviz.export_html(
            args.out,
            args.model,
            args.text,
            target=args.target,
            view=args.view,
            layer=args.layer,
            head=args.head,
            site=args.site,
        )
    except ValueError as e:
        print(f"attnviz export: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
