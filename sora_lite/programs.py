"""`sora-lite generate` in a fresh process without building the model: text-to-video at one
(model, size, steps, guidance), traced once and saved as a jax.export program with its weights.

A fresh `generate` otherwise spends most of its time before sampling: importing flax and orbax,
building the modules' abstract state, restoring the checkpoint, tracing and lowering the sampler
(the persistent compilation cache skips only XLA's compile, after all of that). With a saved
program it loads the weights (safetensors) and the program, and the persistent compilation cache
supplies its executable: 1.7 s instead of 3.3 s for one 17x32x32 video on a 2-core CPU.

Saved under <compilation cache>/programs/: a folder per model version with `weights.safetensors`
(the EMA DiT's and the autoencoder's variables), and in it a folder per request with
`program.bin` (jax.export's serialisation) and `meta.json` (the weights' order as arguments, and
the training captions that new words are read onto).
The program makes the starting noise from the seed itself: a fresh process would otherwise
compile the random generator on its own, about a second. The model's key hashes its folder's
files (names, sizes, times), the package's source and jax's version and device: a retrained
model or an edited sora_lite never runs a stale program. Files and folders are written beside
their place and renamed into it, so a killed run leaves none half-written.
"""

import contextlib
import hashlib
import json
import os
import shutil
import warnings

import jax
import numpy as np
from jax import export
from safetensors.numpy import load_file, save_file

from sora_lite import cache_dir, model_path, validate
from sora_lite.text import TextEncoder
from sora_lite.video import from_sampler
from sora_lite.wording import Vocabulary


def generate(model: str | None, prompt: str, num_frames: int | None = None, height: int | None = None,
             width: int | None = None, seed: int = 0, steps: int | None = None,
             guidance: float | None = None) -> tuple[np.ndarray, str]:
    """(uint8 [1, T, H, W, 3], the prompt as the model read it): `Pipeline.from_pretrained(model)`'s
    `generate([prompt], ...)` and `read([prompt])`, from this request's saved program, saved first
    if there is none."""
    prompts = validate.prompts([prompt])
    seed = validate.integer("seed", seed, 0, 2**32 - 1)
    request = hashlib.sha256(repr([num_frames, height, width, steps, guidance]).encode()).hexdigest()[:16]
    entry = os.path.join(cache_dir(), "programs", _model_key(model), request)
    loaded = None
    if os.path.isfile(os.path.join(entry, "meta.json")):
        try:
            loaded = _load(entry)
        except Exception as e:  # noqa: BLE001 - an entry this jax cannot read: make it again
            warnings.warn(f"saved program {entry} is unreadable ({str(e)[:200]}); tracing it again", stacklevel=2)
    program, weights, text_encoder, vocabulary = loaded or _save(entry, model, num_frames, height, width, steps,
                                                                 guidance)
    read = prompts[0] if vocabulary is None else vocabulary.rewrite(prompts[0])
    text, mask = text_encoder([read])  # [1, L, D], [1, L]
    if text.shape[1] > text_encoder.max_len:  # longer than the program's text: the Pipeline samples it
        from sora_lite.pipeline import Pipeline

        return Pipeline.from_pretrained(model).generate(prompts, num_frames, height, width, seed, steps, guidance), read
    null_text, null_mask = text_encoder([""])
    video = program.call(weights, np.uint32(seed), text, mask, null_text[0], null_mask[0])
    return from_sampler(video), read


def _model_key(model: str | None) -> str:
    device = jax.local_devices()[0]
    digest = hashlib.sha256(repr([jax.__version__, device.platform, device.device_kind]).encode())
    folder = model_path(model)
    for root, dirs, files in os.walk(folder):  # the model as it is now: retrained, it is another program
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, folder)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    digest.update(os.path.abspath(folder).encode())
    package = os.path.dirname(__file__)
    for name in sorted(os.listdir(package)):  # the code that traced it
        if name.endswith(".py"):
            with open(os.path.join(package, name), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:32]


def _save(entry: str, model, num_frames, height, width, steps, guidance):
    """Trace the request with the model and write its entry; `_load`'s tuple. A user error (a bad
    size, a missing checkpoint) is the Pipeline's, as it would be without programs."""
    from sora_lite.pipeline import Pipeline  # flax and orbax: only when there is no program yet

    pipe = Pipeline.from_pretrained(model)
    function, names, weights = pipe.text_to_video(num_frames, height, width, steps, guidance)
    length, dim = pipe.cfg.text.max_len, TextEncoder.dim
    seed = jax.ShapeDtypeStruct((), np.uint32)
    text, mask = jax.ShapeDtypeStruct((1, length, dim), np.float32), jax.ShapeDtypeStruct((1, length), bool)
    null_text, null_mask = jax.ShapeDtypeStruct((length, dim), np.float32), jax.ShapeDtypeStruct((length,), bool)
    program = export.export(jax.jit(function))(weights, seed, text, mask, null_text, null_mask)
    meta = {"weights": names, "max_len": length,
            "captions": None if pipe.vocabulary is None else pipe.vocabulary.captions}
    tmp = f"{entry}.tmp{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        weights_file = os.path.join(os.path.dirname(entry), "weights.safetensors")  # one copy per model version
        save_file(dict(zip(names, weights)), f"{tmp}.safetensors")
        os.replace(f"{tmp}.safetensors", weights_file)
        with open(os.path.join(tmp, "program.bin"), "wb") as f:
            f.write(program.serialize())
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f)
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)  # fails if another process saved it meanwhile: theirs serves as well
    except OSError as e:  # a full disk, a read-only cache: this run still samples
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.remove(f"{tmp}.safetensors")
        if not os.path.isfile(os.path.join(entry, "meta.json")):
            warnings.warn(f"could not save the program in {entry} ({e}); the next run traces it again",
                          stacklevel=3)
    return program, weights, pipe.text_encoder, pipe.vocabulary


def _load(entry: str):
    """(program, its weights in argument order, text encoder, vocabulary) of a saved entry."""
    with open(os.path.join(entry, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(entry, "program.bin"), "rb") as f:
        program = export.deserialize(bytearray(f.read()))
    saved = load_file(os.path.join(os.path.dirname(entry), "weights.safetensors"))
    vocabulary = None if meta["captions"] is None else Vocabulary(meta["captions"])
    return program, [saved[name] for name in meta["weights"]], TextEncoder(meta["max_len"]), vocabulary
