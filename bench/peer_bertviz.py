"""The notebook way, for DESIGN section 7's peer comparison (run by bench_api.py).

A Hugging Face ``BertModel`` of the encoder's sizes (random weights: the timing and the
bytes do not depend on them), ``output_attentions=True``, fed to
``bertviz.head_view(..., html_action='return')``. Prints JSON: seconds per renderable
payload (median) and its bytes.

Runs with the project's torch and transformers + bertviz from ``bench/.pkgs`` (see
bench/requirements.txt): ``PYTHONPATH=bench/.pkgs .venv/bin/python bench/peer_bertviz.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--d-ff", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch
    from bertviz import head_view
    from transformers import BertConfig, BertModel

    torch.set_num_threads(args.threads)
    cfg = BertConfig(
        vocab_size=args.vocab,
        hidden_size=args.d_model,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.d_ff,
        max_position_embeddings=512,
    )
    cfg._attn_implementation = "eager"  # the attention matrices must exist (no fused SDPA)
    model = BertModel(cfg).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, args.vocab, (1, args.tokens), generator=g)
    tokens = ["[CLS]"] + [f"tok{i}" for i in ids[0, 1:-1].tolist()] + ["[SEP]"]

    times, size = [], 0
    for _ in range(args.repeat + 1):
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model(ids, output_attentions=True)
        html = head_view(out.attentions, tokens, html_action="return")
        payload = html.data.encode()
        times.append(time.perf_counter() - t0)
        size = len(payload)
    times = times[1:]  # the first run warms up
    print(
        json.dumps(
            {
                "seconds_median": statistics.median(times),
                "seconds_min": min(times),
                "bytes": size,
                "tokens": args.tokens,
                "transformers": __import__("transformers").__version__,
                "bertviz": getattr(__import__("bertviz"), "__version__", "1.4.1"),
            }
        )
    )


if __name__ == "__main__":
    main()
