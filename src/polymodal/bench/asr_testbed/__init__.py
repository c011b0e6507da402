"""WER of any speech recogniser on the scenario ASR testbed.

:mod:`.recognizers` wraps offline recognisers behind one ``transcribe`` call
(pocketsphinx and Whisper tiny.en through faster-whisper, from the ``asr``
extra); :mod:`.score` measures word error rate per scenario and severity with a
bootstrap interval over utterances, and whether it rises with severity; the
command is ``polymodal asr-testbed --recognizer NAME``.
"""
