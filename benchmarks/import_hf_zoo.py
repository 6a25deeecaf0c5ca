"""`archviz import --verify` over Hugging Face `transformers` models built from small configs with
random weights (nothing downloaded): which import and verify, and where the others are refused.

Each model (2 layers, width 64, 4 heads, vocabulary 100) is imported on token ids of length 8
(int64), compiled, loaded with the model's weights and compared on a random input. Prints a
markdown table: model, attention implementation, status (the round trip, or the refusal's first
line), seconds (building, import and round trip). A benchmark, not CI (CI: tests/test_import_hf*.py).

    PYTHONPATH=. python benchmarks/import_hf_zoo.py [--only REGEX]

Results go in docs/import.md's table.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

SMALL = {"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 128}
GQA = {**SMALL, "num_key_value_heads": 2}
# (model class, config class, config): the decoders with grouped-query heads, the encoders plain
MODELS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "LlamaForCausalLM": ("LlamaForCausalLM", "LlamaConfig", GQA),
    "MistralForCausalLM": ("MistralForCausalLM", "MistralConfig", GQA),
    "Qwen2ForCausalLM": ("Qwen2ForCausalLM", "Qwen2Config", GQA),
    "Phi3ForCausalLM": ("Phi3ForCausalLM", "Phi3Config", {**GQA, "pad_token_id": 0}),
    "GPTNeoXForCausalLM": ("GPTNeoXForCausalLM", "GPTNeoXConfig", SMALL),
    "OPTForCausalLM": ("OPTForCausalLM", "OPTConfig", {"vocab_size": 100, "hidden_size": 64, "ffn_dim": 128,
                                                        "num_hidden_layers": 2, "num_attention_heads": 4,
                                                        "word_embed_proj_dim": 64}),
    "RobertaModel": ("RobertaModel", "RobertaConfig", SMALL),
    "DistilBertModel": ("DistilBertModel", "DistilBertConfig", {"vocab_size": 100, "dim": 64, "n_layers": 2,
                                                                 "n_heads": 4, "hidden_dim": 128}),
    "T5EncoderModel": ("T5EncoderModel", "T5Config", {"vocab_size": 100, "d_model": 64, "d_kv": 16,
                                                      "d_ff": 128, "num_layers": 2, "num_heads": 4}),
}


def row(name: str, impl: str, length: int) -> str:
    import torch
    import transformers

    from archviz.errors import ArchvizError
    from archviz.runtime.importer import from_module, round_trip

    model_cls, config_cls, config = MODELS[name]
    torch.manual_seed(0)
    start = time.perf_counter()
    try:
        cfg = getattr(transformers, config_cls)(**config, attn_implementation=impl)
        model = getattr(transformers, model_cls)(cfg).eval()
    except ValueError as exc:   # transformers has no such implementation of this model
        return f"| {name} | {impl} | not built: {str(exc).splitlines()[0][:100]} | |"
    try:
        imported = from_module(model, (length,), input_dtype="int64")
        rt = round_trip(model, imported)
    except ArchvizError as exc:
        first = str(exc.format()).splitlines()[0][:160].replace("|", "/")
        return f"| {name} | {impl} | refused: {first} | {time.perf_counter() - start:.1f} |"
    verdict = "verifies" if rt.ok else "DIFFERS"
    return (f"| {name} | {impl} | {verdict}: outputs max abs diff {rt.max_abs_diff:.1g}, params {rt.params:,}"
            f" equal: {rt.params == rt.spec_params == rt.analysis_params}, MACs {rt.analysis_macs:,}"
            f" analysed | {time.perf_counter() - start:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="a regular expression on the model names")
    ap.add_argument("--length", type=int, default=8, help="the token ids' length S")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    print("| model | attention | status | seconds |")
    print("|---|---|---|---|")
    for name in MODELS:
        if not args.only or re.search(args.only, name):
            for impl in ("eager", "sdpa"):
                print(row(name, impl, args.length), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
