"""Prefill and end-to-end latency of a LLaVA-shaped language model with and without DivPrune.

Two settings share one Vicuna-7B-shaped language model with random weights
(LLaVA-1.5-7B and LLaVA-1.6-7B use the same LM shape; only the visual-token count
differs): 576 visual tokens kept to 56 (LLaVA-1.5) and 2880 kept to 282
(LLaVA-1.6, five 576-token crops), each with 48 text tokens, at batch 1 and 16.

Measured, as medians over repeats after a warm-up:

* selection: DivPrune on (B, M, 4096) visual tokens in the model's dtype —
  the published loop (one sample at a time), our batched torch loop and the
  Triton kernel (CUDA), with a check that all three pick the same tokens;
* prefill: one forward over the whole prompt (KV cache on, last logits only),
  unpruned and pruned; the pruned time does not include the selection;
* end-to-end: selection + building the pruned inputs + ``generate`` of 32 new
  tokens (greedy, EOS suppressed), against ``generate`` on the unpruned prompt.

Attention is transformers' default (SDPA). CUDA timings synchronise the device
around each call.

    python benchmarks/divprune_gpu.py                      # CUDA, full size
    python benchmarks/divprune_gpu.py --device cpu --tiny  # smoke test, seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from polymodal.methods.divprune.reference import divprune_loop, published_greedy
from polymodal.methods.divprune.select import cosine_distance, divprune, greedy_max_min
from polymodal.methods.divprune.triton_greedy import greedy_max_min_triton

TEXT_TOKENS = 48


@dataclass(frozen=True)
class Setting:
    name: str
    visual: int
    kept: int


FULL = (Setting("llava-1.5-7b", 576, 56), Setting("llava-1.6-7b", 2880, 282))
TINY = (Setting("tiny-1.5", 144, 14), Setting("tiny-1.6", 720, 70))


def language_model(tiny: bool, device: torch.device, dtype: torch.dtype) -> Any:
    """A Llama/Vicuna-7B-shaped causal LM with random weights (tiny: a toy of it)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    shape: dict[str, Any]
    if tiny:
        shape = {"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2}
        shape |= {"num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 1000}
    else:
        shape = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32}
        shape |= {"num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000}
    config = LlamaConfig(**shape, max_position_embeddings=4096, pad_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    with device:
        model: Any = LlamaForCausalLM(config)
    return model.to(dtype).eval()


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` (device synchronised around each call)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def selection_times(
    features: torch.Tensor, keep: int, device: torch.device, repeats: int
) -> dict[str, Any]:
    """Seconds per batch for each DivPrune implementation, and whether they agree.

    Agreement is checked on one shared distance matrix (16-bit Gram matrices from
    differently batched products may differ in the last bit, and so in a tie).
    """
    distance = cosine_distance(features)
    reference = torch.stack([published_greedy(d, keep) for d in distance])
    picks = {"torch_batched": greedy_max_min(distance, keep)}
    times = {
        "published_loop": timed(
            lambda: [divprune_loop(f, keep) for f in features], device, repeats
        ),
        "torch_batched": timed(lambda: divprune(features, keep, backend="torch"), device, repeats),
    }
    if device.type == "cuda":
        try:
            picks["triton"] = greedy_max_min_triton(distance, keep)
            times["triton"] = timed(
                lambda: divprune(features, keep, backend="triton"), device, repeats
            )
        except Exception as error:  # report and carry on with the torch numbers
            print(f"triton backend failed: {type(error).__name__}: {error}")
    agree = {name: bool(torch.equal(p, reference)) for name, p in picks.items()}
    return {"times": times, "same_picks_as_published": agree}


def prompt(
    batch: int, visual: torch.Tensor, model: Any, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, D) embeddings: 35 text tokens, the visual tokens, 13 text tokens; and the mask."""
    generator = torch.Generator(device=device).manual_seed(1)
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (batch, TEXT_TOKENS), generator=generator, device=device)
    text = model.get_input_embeddings()(ids)
    embeds = torch.cat([text[:, :35], visual.to(text.dtype), text[:, 35:]], dim=1)
    return embeds, torch.ones(embeds.shape[:2], dtype=torch.long, device=device)


def measure(model: Any, setting: Setting, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """One row of the table: selection, prefill and end-to-end times for one setting."""
    device, dtype = model.device, model.dtype
    width = model.config.hidden_size
    generator = torch.Generator(device=device).manual_seed(0)
    # Visual tokens scaled like input embeddings, in the model's dtype.
    visual = 0.02 * torch.randn(
        batch, setting.visual, width, generator=generator, device=device, dtype=dtype
    )
    measured = selection_times(visual, setting.kept, device, args.repeats)
    selection = measured["times"]
    full = prompt(batch, visual, model, device)
    backend = "triton" if "triton" in selection else "torch"

    def pruned_inputs() -> tuple[torch.Tensor, torch.Tensor]:
        kept = divprune(visual, setting.kept, backend=backend)  # (B, K) sorted
        chosen = visual.gather(1, kept[..., None].expand(-1, -1, width))
        return prompt(batch, chosen, model, device)

    def prefill(inputs: tuple[torch.Tensor, torch.Tensor]) -> Callable[[], Any]:
        embeds, mask = inputs
        return lambda: model(
            inputs_embeds=embeds, attention_mask=mask, use_cache=True, logits_to_keep=1
        )

    def generate(make: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], Any]:
        def call() -> Any:
            embeds, mask = make()
            return model.generate(
                inputs_embeds=embeds,
                attention_mask=mask,
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                do_sample=False,
            )

        return call

    with torch.inference_mode():
        prefill_full = timed(prefill(full), device, args.repeats)
        prefill_pruned = timed(prefill(pruned_inputs()), device, args.repeats)
        e2e_full = timed(generate(lambda: full), device, args.gen_repeats)
        e2e_pruned = timed(generate(pruned_inputs), device, args.gen_repeats)
    best = min(selection.values())
    return {
        **asdict(setting),
        "batch": batch,
        "selection_ms": {k: round(v * 1e3, 3) for k, v in selection.items()},
        "e2e_selection_backend": backend,
        "selection_pct_of_prefill": round(100 * best / prefill_full, 2),
        "same_picks_as_published": measured["same_picks_as_published"],
        "prefill_full_ms": round(prefill_full * 1e3, 2),
        "prefill_pruned_ms": round(prefill_pruned * 1e3, 2),
        "prefill_speedup": round(prefill_full / prefill_pruned, 2),
        "e2e_full_ms": round(e2e_full * 1e3, 1),
        "e2e_pruned_ms": round(e2e_pruned * 1e3, 1),
        "e2e_speedup": round(e2e_full / e2e_pruned, 2),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = language_model(args.tiny, device, dtype)
    rows = []
    for setting in TINY if args.tiny else FULL:
        for batch in args.batches:
            rows.append(measure(model, setting, batch, args))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'setting':<14}{'B':>3}  {'tokens':>10}  {'select ms (loop/torch/triton)':>30}  "
        f"{'% prefill':>9}  {'prefill ms full→pruned':>22}  {'×':>5}  "
        f"{'e2e ms full→pruned':>20}  {'×':>5}"
    )
    lines = [head]
    for r in rows:
        s = r["selection_ms"]
        sel = "/".join(str(s.get(k, "—")) for k in ("published_loop", "torch_batched", "triton"))
        lines.append(
            f"{r['name']:<14}{r['batch']:>3}  {r['visual']:>5}→{r['kept']:<4}  {sel:>30}  "
            f"{r['selection_pct_of_prefill']:>9}  "
            f"{str(r['prefill_full_ms']) + '→' + str(r['prefill_pruned_ms']):>22}  "
            f"{r['prefill_speedup']:>5}  "
            f"{str(r['e2e_full_ms']) + '→' + str(r['e2e_pruned_ms']):>20}  {r['e2e_speedup']:>5}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--tiny", action="store_true", help="toy model and token counts")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10, help="repeats of selection/prefill")
    parser.add_argument("--gen-repeats", type=int, default=3, help="repeats of generate")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            parser.error("no CUDA device: use --device cpu --tiny for a smoke test")
        print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    rows = run(args)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
