"""The espeak-ng worker program: one ``fork()`` per utterance (standard library only).

Run as ``python -I -S espeak_worker.py --serve LIBRARY DATA`` by
:class:`polymodal.data.synth.speech.SpeechSynthesizer`. The worker initialises
espeak-ng and loads the ``en`` voice but never speaks itself: each request is
synthesised by a freshly forked child, so espeak-ng's hidden per-process state
(e.g. the pitch-flutter index in ``wavegen.c``) is the same for every utterance and
the same (text, voice, seed) gives bit-identical audio in any batch and order.

The module imports nothing beyond the standard library: the cost of ``fork()`` and
of the child's exit grows with the memory the worker has touched.

Protocol. Request: :data:`REQUEST` header, then voice name and text (UTF-8).
Reply: :data:`REPLY` (stage, error code, payload size), then int16 samples at
22 050 Hz; stage 0 is success, other stages are named in :data:`STAGES`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import struct
import sys
from typing import Any

# espeak-ng constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH = 1, 2, 3

# Worker protocol. Request: header then voice name and text (UTF-8).
# Reply: stage (0 = ok, see STAGES), error code, payload size, then int16 samples.
REQUEST = struct.Struct("<QiiiII")  # seed, pitch, rate, volume, len(voice), len(text)
REPLY = struct.Struct("<iiq")  # stage, code, n_bytes
HELLO = struct.Struct("<i")  # espeak_Initialize's result: the sample rate, or < 0
STAGES = {1: "voice", 2: "synthesis", 3: "child process"}


def read_exact(fd: int, n: int) -> bytes:
    parts = []
    while n:
        part = os.read(fd, n)
        if not part:
            raise EOFError
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _speak(lib: Any, libc: Any, chunks: list[bytes], request: tuple[Any, ...]) -> bytes:
    """Synthesise one request in a freshly forked child; the reply message."""
    seed, pitch, rate, volume, voice, text = request
    lib.espeak_ng_SetRandSeed(seed)
    libc.srand(seed)
    status = lib.espeak_SetVoiceByName(voice)
    if status != 0:
        return REPLY.pack(1, status, 0)
    for param, value in ((_PARAM_RATE, rate), (_PARAM_VOLUME, volume), (_PARAM_PITCH, pitch)):
        lib.espeak_SetParameter(param, value, 0)
    status = lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    status = status or lib.espeak_Synchronize()
    if status != 0:
        return REPLY.pack(2, status, 0)
    audio = b"".join(chunks)
    return REPLY.pack(0, 0, len(audio)) + audio


def serve(library: str, data: str) -> None:
    """Answer requests on stdin with replies on stdout, one fork per request.

    The child writes its reply itself (header and samples in one piece), which saves
    a copy through the worker; the worker only writes a reply when the child failed
    before writing anything.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    try:
        lib = ctypes.CDLL(library)
        libc = ctypes.CDLL(None)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0)
    except OSError as exc:
        print(f"cannot load espeak-ng from {library}: {exc}", file=sys.stderr)
        sample_rate = -1
    write_all(stdout, HELLO.pack(sample_rate))
    if sample_rate <= 0:
        return
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    libc.srand.argtypes = [ctypes.c_uint]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    chunks: list[bytes] = []  # filled by the callback, only ever in a child

    def on_audio(wave: Any, n_samples: int, events: Any) -> int:
        if n_samples > 0:
            chunks.append(ctypes.string_at(wave, 2 * n_samples))  # int16 samples
        return 0  # continue

    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )
    callback = callback_type(on_audio)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetVoiceByName(b"en")  # loads the phoneme tables and English dictionary once

    while True:
        try:
            header = read_exact(stdin, REQUEST.size)
        except EOFError:
            return  # the parent closed our stdin
        seed, pitch, rate, volume, n_voice, n_text = REQUEST.unpack(header)
        voice = read_exact(stdin, n_voice)
        text = read_exact(stdin, n_text)
        pid = os.fork()
        if pid == 0:  # child: speak once, reply straight to the caller, exit without cleanup
            code = 1  # nothing written
            try:
                reply = _speak(lib, libc, chunks, (seed, pitch, rate, volume, voice, text))
                code = 2  # writing
                write_all(stdout, reply)
                code = 0
            except BaseException as exc:
                print(f"espeak-ng worker child: {exc!r}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)
        _, wait_status = os.waitpid(pid, 0)
        if os.WIFEXITED(wait_status) and os.WEXITSTATUS(wait_status) == 1:
            write_all(stdout, REPLY.pack(3, wait_status, 0))  # the child failed before replying
        elif wait_status != 0:
            # the child died, possibly halfway through its reply: the stream cannot be trusted
            sys.exit(f"espeak-ng worker: child process died (wait status {wait_status})")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} --serve LIBRARY DATA")
