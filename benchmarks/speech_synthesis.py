"""Throughput of offline speech synthesis: single digit words over sampled voices.

Usage::

    python benchmarks/speech_synthesis.py --n 1000 --workers 2

Prints utterances per second with the worker pool already running, and including
the pool's start-up. The cache is not used.
"""

from __future__ import annotations

import argparse
import os
import time

from polymodal.data.synth.speech import SAMPLE_RATE, SpeechSynthesizer, Utterance, sample_voices

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=1000, help="number of utterances")
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: os.cpu_count())"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the voice draw")
    args = parser.parse_args()

    voices = sample_voices(args.n, seed=args.seed)
    batch = [Utterance(DIGITS[i % 10], voice, seed=i) for i, voice in enumerate(voices)]

    started, cpu_before = time.perf_counter(), os.times()
    with SpeechSynthesizer(args.workers) as synth:
        ready, cpu_ready = time.perf_counter(), os.times()
        waves = synth.synthesize(batch, progress=False)
        done = time.perf_counter()
    cpu = os.times()  # the workers have exited, so their time (and their children's) is in
    own = (cpu.user - cpu_ready.user) + (cpu.system - cpu_ready.system)
    workers = (cpu.children_user - cpu_before.children_user) + (
        cpu.children_system - cpu_before.children_system
    )
    audio = sum(len(w) for w in waves) / SAMPLE_RATE

    startup, work = ready - started, done - ready
    print(f"utterances      {args.n} single digit words, {synth_workers(args.workers)} workers")
    print(f"audio           {audio:.1f} s at {SAMPLE_RATE} Hz ({audio / args.n:.2f} s per word)")
    print(f"pool start-up   {startup:.3f} s")
    print(f"synthesis       {work:.3f} s -> {args.n / work:.0f} utterances/s")
    print(f"with start-up   {startup + work:.3f} s -> {args.n / (startup + work):.0f} utterances/s")
    print(f"real-time factor {audio / work:.0f}x")
    print(
        f"CPU per utterance: {1e3 * workers / args.n:.2f} ms in workers (fork, espeak-ng, exit), "
        f"{1e3 * own / args.n:.2f} ms here (resampling, trimming, I/O)"
    )


def synth_workers(requested: int | None) -> int:
    return requested if requested is not None else (os.cpu_count() or 1)


if __name__ == "__main__":
    main()
