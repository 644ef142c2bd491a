"""Generation speed of our BLOOM with and without the KV cache.

The loop chat and the per-stage answer evaluation run (sft/generate.py generate_ids),
greedy, on the `tiny` preset with random weights: a prompt, then --new tokens (256), once
re-reading the whole context every step (use_cache=False) and once with the KV cache. The
two alternate run by run, so load from other processes falls on both alike; it prints the
median tokens/s of each, checks that both gave the same tokens, and ends with the ratio.
Batched greedy (model/generate.py greedy_generate, left-padded prompts) is timed too.

    python benchmarks/generation_speed.py
    python benchmarks/generation_speed.py --preset small --new 512 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.model import BloomForCausalLM, ModelConfig  # noqa: E402
from bloomberg_style.model.generate import greedy_generate  # noqa: E402
from bloomberg_style.sft.generate import SamplingConfig, generate_ids  # noqa: E402


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--attention", default="auto", choices=["eager", "sdpa", "flex", "auto"])
    parser.add_argument("--prompt", type=int, default=32, help="prompt tokens")
    parser.add_argument("--new", type=int, default=256, help="new tokens per generation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="prompts in the batched-greedy run")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = ModelConfig.preset(args.preset, attention_impl=args.attention)
    model = BloomForCausalLM(config).eval()
    prompt = torch.randint(0, config.vocab_size, (args.prompt,)).tolist()
    greedy = SamplingConfig(temperature=0, max_new_tokens=args.new)
    print(
        f"{args.preset}: {model.num_parameters() / 1e6:.1f}M parameters, attention {args.attention}, "
        f"{args.threads} thread(s); prompt {args.prompt} tokens, {args.new} new tokens, greedy"
    )

    list(generate_ids(model, prompt, SamplingConfig(temperature=0, max_new_tokens=4)))  # warm up
    speeds: dict[bool, list[float]] = {False: [], True: []}
    tokens: dict[bool, list[int]] = {}
    for r in range(args.repeats):
        for use_cache in (False, True) if r % 2 == 0 else (True, False):
            seconds, out = timed(lambda c=use_cache: list(generate_ids(model, prompt, greedy, use_cache=c)))
            speeds[use_cache].append(len(out) / seconds)
            tokens[use_cache] = out
            print(
                f"  run {r + 1}: {'cache' if use_cache else 'no cache'}: {len(out) / seconds:8.1f} tokens/s"
            )
    if tokens[True] != tokens[False]:
        raise SystemExit("the cached and uncached loops gave different tokens")
    without, with_cache = statistics.median(speeds[False]), statistics.median(speeds[True])

    prompts = [prompt[: args.prompt - 3 * i] or prompt[:1] for i in range(args.batch)]
    seconds, answers = timed(lambda: greedy_generate(model, prompts, args.new, batch_size=args.batch))
    batched = sum(len(a) for a in answers) / seconds
    print(f"tokens identical with and without the cache: {len(tokens[True])} tokens")
    print(f"no cache (re-read the context):  {without:8.1f} tokens/s")
    print(f"KV cache:                        {with_cache:8.1f} tokens/s")
    print(f"KV cache, batched greedy x{args.batch}:   {batched:8.1f} tokens/s (left-padded prompts)")
    print(f"ratio cache / no cache at {args.new} new tokens: {with_cache / without:.1f}x")


if __name__ == "__main__":
    main()
