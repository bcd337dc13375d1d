"""Sequential vs parallel: training tokens/s of the RNN and the Transformer translators as
sentences grow.

Fresh models of the `rnn-en-fr` and `seq2seq-en-fr` recipes' architectures (vocabulary 646,
as trained), one training step = forward + backward + AdamW on a batch of random token ids,
source and target of T tokens each. The RNN runs 2T cell steps one after another; the
Transformer handles the T positions of each layer in one batch of matrix products.

    python bench/bench_rnn_vs_transformer.py [--threads 1 2] [--lengths 8 32 128]

More than one thread means something only on a quiet machine: beside other jobs the threads
wait for busy cores (measured here, 2026-11-30, load 4-5: 2 threads were 7-15x slower).

Prints a Markdown table. The card of rnn-en-fr holds the same figure on the real corpus
(sentences of at most 8 source tokens, 1 thread).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.checkpoint import config_from_dict, model_from_config  # noqa: E402
from training.recipes import RECIPES  # noqa: E402

VOCAB, BATCH = 646, 64
IDS = dict(pad_id=0, bos_id=2, eos_id=3)


def tokens_per_second(model_id: str, length: int, steps: int) -> float:
    torch.manual_seed(0)
    model = model_from_config(
        config_from_dict({"vocab_size": VOCAB, **RECIPES[model_id].architecture, **IDS})
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    src = torch.randint(4, VOCAB, (BATCH, length))
    tgt = torch.randint(4, VOCAB, (BATCH, length + 1))

    def step() -> None:
        logits = model(src, target_ids=tgt[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH * 2 * length / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, batch {BATCH}, ", end="")
    print(f"load average at the start {os.getloadavg()[0]:.2f}\n")
    print("| threads | T (source = target) | rnn-en-fr tok/s | seq2seq-en-fr tok/s | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for length in args.lengths:
            rnn = tokens_per_second("rnn-en-fr", length, args.steps)
            transformer = tokens_per_second("seq2seq-en-fr", length, args.steps)
            print(
                f"| {threads} | {length} | {rnn:,.0f} | {transformer:,.0f} "
                f"| {transformer / rnn:.2f}× |",
                flush=True,
            )
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
