"""``polymodal asr-testbed``: word error rate of a recogniser per scenario and severity.

Renders the fixed ASR testbed (:mod:`polymodal.data.synth.asr_testbed`: sentences
of each ``--sentences`` set, everyday talk or Shapes-VQA questions, spoken by
espeak-ng voices, heard in a meeting, a live stream, a phone call, a
street and a car at severities 1-5), transcribes every clip with each
``--recognizer`` and writes into ``--out``:

    asr_testbed.json   WER with its 95 % bootstrap interval per condition, every
                       hypothesis, and Spearman ρ of WER over severity per scenario
    asr_testbed.md     the table
    asr_testbed.png    WER against severity, one panel per scenario

``--transcribe FILE.wav ...`` transcribes your own recordings instead (any rate,
resampled and said; stereo averaged and said; empty, silent or longer than 30 s:
a one-line error).
"""

from __future__ import annotations

import argparse
from pathlib import Path

WINDOW_S = 30.0  # Whisper's window; longer clips are split by the user


def add_parser(commands: argparse._SubParsersAction) -> None:
    from polymodal.bench.asr_testbed.recognizers import RECOGNIZERS
    from polymodal.data.synth.asr_testbed import SENTENCE_SETS, SENTENCES

    parser = commands.add_parser(
        "asr-testbed",
        help="WER of a speech recogniser per scenario x severity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--recognizer",
        action="append",
        required=True,
        metavar="NAME",
        help=f"one of {', '.join(sorted(RECOGNIZERS))} (nexus-o:RUN_DIR for a Nexus-O run "
        "folder, else the nexus_o check's cached stage-1 run); repeat to compare several",
    )
    parser.add_argument(
        "--sentences",
        action="append",
        choices=list(SENTENCE_SETS),
        help="sentence set: everyday talk (default) or shapes (Shapes-VQA questions, the only "
        "words nexus-o knows); repeat for both",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=12,
        help=f"utterances per condition, 1..{len(SENTENCES)} (default 12)",
    )
    parser.add_argument("--out", type=Path, default=Path("asr_testbed"), help="report folder")
    parser.add_argument(
        "--transcribe", nargs="+", type=Path, metavar="WAV", help="transcribe these files instead"
    )
    parser.set_defaults(func=run)


def _transcribe_files(recognizers: list, paths: list[Path]) -> int:
    from polymodal.data.real.speech_wav import read_speech_wav

    clips = [read_speech_wav(path, WINDOW_S) for path in paths]
    for clip in clips:
        for note in clip.notes:
            print(f"note: {note}")
    for recognizer in recognizers:
        for path, text in zip(paths, recognizer.transcribe([c.wave for c in clips]), strict=True):
            print(f"{recognizer.name}\t{path}\t{text}")
    return 0


def run(args: argparse.Namespace) -> int:
    from polymodal.bench.asr_testbed.recognizers import make_recognizer

    recognizers = [make_recognizer(name) for name in dict.fromkeys(args.recognizer)]
    if args.transcribe:
        return _transcribe_files(recognizers, args.transcribe)

    from polymodal.bench.asr_testbed.report import wer_table, write_report
    from polymodal.bench.asr_testbed.score import score_testbed
    from polymodal.data.synth.asr_testbed import build_testbed

    scores = []
    for sentences in dict.fromkeys(args.sentences or ["everyday"]):
        bed = build_testbed(size=args.size, sentences=sentences)
        scores += [score_testbed(recognizer, bed, sentences) for recognizer in recognizers]
    paths = write_report(scores, args.out)
    print(wer_table(scores), end="")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
