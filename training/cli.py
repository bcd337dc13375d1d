"""The `attnviz` command.

``attnviz train <model-id>`` reproduces a shipped checkpoint from nothing;
``attnviz import SRC --id ID --out DIR`` converts a Hugging Face checkpoint into one of ours.
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
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch's choice). The shipped checkpoints were trained with "
        "1, which reproduces them bit for bit and is the fastest on a busy machine.",
    )
    sub.add_parser("recipes", help="list the recipes")
    i = sub.add_parser(
        "import",
        help="convert a Hugging Face checkpoint (safetensors) into DIR/ID",
        description="Convert a Hugging Face checkpoint into attnviz's format (config.json, "
        "model.safetensors, tokenizer.json, card.json) in DIR/ID. SRC is a local folder with "
        "config.json, *.safetensors and tokenizer.json, or a hub id (needs the network). "
        "Supported: BERT, RoBERTa, DistilBERT, GPT-2, Llama, Mistral, Qwen2, BART, Marian. "
        "Pickle (.bin) weights are refused; no code from the checkpoint ever runs.",
    )
    i.add_argument("src", metavar="SRC", help="checkpoint folder or hub id (e.g. gpt2)")
    i.add_argument(
        "--id", required=True, dest="model_id", metavar="ID", help="the model id to serve it as"
    )
    i.add_argument(
        "--out", required=True, metavar="DIR", help="the checkpoint folder to write into"
    )
    i.add_argument("--force", action="store_true", help="replace DIR/ID if it exists")
    args = parser.parse_args(argv)

    if args.command == "import":
        return _import(args)
    if args.command == "recipes":
        for r in RECIPES.values():
            print(f"{r.model_id:16} {r.objective:10} {r.steps:6} steps  {r.title}")
        return 0
    import torch

    from training.train import ROOT, train

    if args.threads:
        torch.set_num_threads(args.threads)

    out = args.out or ROOT / "checkpoints" / args.model_id
    card = train(args.model_id, out, steps=args.steps, device=args.device)
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

    from models.convert import ConversionError, import_checkpoint

    start = time.perf_counter()
    try:
        path = import_checkpoint(args.src, args.model_id, args.out, overwrite=args.force)
    except ConversionError as e:
        print(f"attnviz import: {e}", file=sys.stderr)
        return 2
    card = json.loads((path / "card.json").read_text())
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s: {card['description']}")
    print(f"parameters: {card['parameters']}")
    for line in card["conversion"]["notes"]:
        print(f"note: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
