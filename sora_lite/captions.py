"""Captions in many wordings: what the DiT trains on, and a vocabulary it never sees.

The spec's templates name each attribute with one word, so a model trained on them alone
learns a handful of tokens and misses "a scarlet ball sliding to the left". Training
instead draws each example's caption from a table of `PER_SUBJECT` paraphrases of its
subject (the spec's own captions first), written with the `TRAIN` vocabulary: several
synonyms per attribute teach the DiT the meaning the frozen text encoder gives a word,
not its token. `HELDOUT` holds synonyms, phrasings and templates that no training caption
uses; prompts written only with them measure whether that carries to unseen words (the
pipeline reads such words onto training words first: wording.py).

A subject is (color, shape, direction), direction None for an image (no motion).
`caption_rows` gives any run's captions (Moving Shapes', Camera Moves' or a folder's), which
training draws from and the pipeline reads new words onto; none of it imports the data pipeline.
"""

import numpy as np
from ml_collections import ConfigDict

from sora_lite import wording
from sora_lite.datasets import camera_moves
from sora_lite.datasets.moving_shapes import ALL_COMBOS, COLORS, IMAGE_TEMPLATES, SHAPES, TEMPLATES
from sora_lite.shapes import mixture

SUBJECTS = ALL_COMBOS + tuple((c, s, None) for c in COLORS for s in SHAPES)  # 72 videos, then 18 images
SUBJECT_INDEX = {s: i for i, s in enumerate(SUBJECTS)}
PER_SUBJECT = 32  # paraphrases per subject in the training table


def _motions(direction, verbs, extra=()):
    """(participle, third person) phrases: each verb with the direction, plus `extra` pairs."""
    return tuple((f"{ing} {direction}", f"{s} {direction}") for ing, s in verbs) + tuple(extra)


_TRAIN_VERBS = (("moving", "moves"), ("going", "goes"), ("sliding", "slides"), ("drifting", "drifts"),
                ("heading", "heads"), ("travelling", "travels"), ("floating", "floats"))
_HELDOUT_VERBS = (("gliding", "glides"), ("shifting", "shifts"))

# attribute value -> words (or phrases); templates take {color} {shape} and {ing} or {s}.
TRAIN = {
    "color": {"red": ("red", "scarlet", "cherry red"), "green": ("green", "lime", "grass green"),
              "blue": ("blue", "cobalt", "royal blue"), "yellow": ("yellow", "golden", "lemon"),
              "magenta": ("magenta", "purple", "pink", "fuchsia"), "cyan": ("cyan", "aqua", "turquoise")},
    "shape": {"circle": ("circle", "ball", "disc", "dot", "round shape"),
              "square": ("square", "box", "block", "square shape"),
              "triangle": ("triangle", "pyramid", "triangular shape")},
    "motion": {
        "left": _motions("left", _TRAIN_VERBS, (("moving to the left", "moves to the left"),
                                               ("moving leftward", "moves leftward"))),
        "right": _motions("right", _TRAIN_VERBS, (("moving to the right", "moves to the right"),
                                                 ("moving rightward", "moves rightward"))),
        "up": _motions("up", _TRAIN_VERBS, (("moving upward", "moves upward"), ("rising", "rises"))),
        "down": _motions("down", _TRAIN_VERBS, (("moving downward", "moves downward"), ("falling", "falls"),
                                               ("sinking", "sinks"))),
    },
    "video": ("a {color} {shape} {ing}", "a {color} {shape} {s}", "the {color} {shape} is {ing}",
              "{color} {shape} {ing}", "a {color} {shape} that {s}", "video of a {color} {shape} {ing}",
              "a {shape} in {color} {ing}", "there is a {color} {shape} {ing}",
              "one {color} {shape} {ing} on a black background"),
    "image": ("a {color} {shape}", "the {color} {shape}", "a {color} {shape} on black", "{color} {shape}",
              "an image of a {color} {shape}", "a picture of a {color} {shape}", "a {shape} in {color}",
              "one {color} {shape} on a black background"),
}

HELDOUT = {
    "color": {"red": ("crimson",), "green": ("emerald",), "blue": ("azure", "sapphire"), "yellow": ("gold",),
              "magenta": ("violet",), "cyan": ("teal",)},
    "shape": {"circle": ("disk", "orb"), "square": ("cube", "tile"), "triangle": ("wedge",)},
    "motion": {
        "left": _motions("toward the left", _HELDOUT_VERBS),
        "right": _motions("toward the right", _HELDOUT_VERBS),
        "up": (("ascending", "ascends"), ("climbing", "climbs")),
        "down": (("descending", "descends"), ("dropping", "drops")),
    },
    "video": ("watch the {color} {shape} as it {s}", "an animation where one {color} {shape} {s}",
              "clip: {color} {shape}, {ing}"),
    "image": ("a photo showing a {color} {shape}", "a single {color} {shape} against darkness"),
}


def spec_captions(subject) -> list[str]:
    """The spec's captions of a subject, one per template (the first is what evaluation prompts)."""
    color, shape, direction = subject
    templates = IMAGE_TEMPLATES if direction is None else TEMPLATES
    return [t.format(color=color, shape=shape, direction=direction) for t in templates]


def paraphrase(subject, vocab: dict, rng: np.random.Generator) -> str:
    """One caption of `subject` from `vocab` (TRAIN or HELDOUT), every slot drawn by `rng`."""
    color, shape, direction = subject
    pick = lambda options: options[rng.integers(len(options))]  # noqa: E731
    words = {"color": pick(vocab["color"][color]), "shape": pick(vocab["shape"][shape])}
    if direction is None:
        return pick(vocab["image"]).format(**words)
    ing, s = pick(vocab["motion"][direction])
    return pick(vocab["video"]).format(ing=ing, s=s, **words)


def training_captions(subject) -> list[str]:
    """`PER_SUBJECT` distinct captions of a subject: the spec's, then TRAIN paraphrases."""
    captions = spec_captions(subject)
    rng = np.random.default_rng([SUBJECT_INDEX[subject], 17])
    while len(captions) < PER_SUBJECT:
        c = paraphrase(subject, TRAIN, rng)
        if c not in captions:
            captions.append(c)
    return captions


def heldout_caption(subject, index: int) -> str:
    """Caption `index` of a subject written only in HELDOUT words (every slot, and the template)."""
    return paraphrase(subject, HELDOUT, np.random.default_rng([SUBJECT_INDEX[subject], index, 29]))


def caption_table() -> list[str]:
    """Every subject's training captions, subject-major: row `subject * PER_SUBJECT + k`."""
    return [c for s in SUBJECTS for c in training_captions(s)]


DATASETS = ("moving_shapes", "camera_moves")


def dataset(data: ConfigDict) -> str:
    """What a run trains on: "folder" (with `data.folder`) or `data.name`, checked."""
    if data.get("folder"):
        name = "folder"
    else:
        name = data.get("name", "moving_shapes")  # models saved before data.name trained on Moving Shapes
        if name not in DATASETS:
            raise ValueError(f"data.name {name!r} is not a data set: use one of {', '.join(DATASETS)}, "
                             "or --config.data.folder=DIR for your own videos")
    if data.get("partial_captions") and name != "camera_moves":
        raise ValueError(f"data.partial_captions is for Camera Moves' captions, not for {name}: leave it 0")
    return name


def caption_rows(data: ConfigDict) -> list[list[str]]:
    """The captions a clip's `subject` indexes: per Moving Shapes subject its training captions
    (`training_captions`); per seen Camera Moves combination its templates, and with
    `data.partial_captions` each attribute alone (`camera_moves.training_captions`); for a
    folder, each distinct caption alone."""
    name = dataset(data)
    if name == "folder":
        from sora_lite.datasets import video_folder  # PyAV and tensorflow-datasets: only for a folder

        return [[c] for c in video_folder.captions(data.folder, mixture(data), data.fps)]
    if name == "camera_moves":
        partial = data.get("partial_captions", 0)  # models saved before the key had none
        return [camera_moves.training_captions(s, m, partial) for s, m in camera_moves.SEEN]
    table, k = caption_table(), PER_SUBJECT
    return [table[i : i + k] for i in range(0, len(table), k)]


def vocabulary(data: ConfigDict) -> wording.Vocabulary:
    """The words of every caption in `caption_rows`, which new words of a prompt are read onto."""
    return wording.Vocabulary([c for row in caption_rows(data) for c in row])


def sample_prompts(image: bool = False) -> list[str]:
    """What training samples show: two seen combinations, then two held-out ones (for images,
    four colour-shape pairs), in the spec's first template."""
    subjects = (("red", "circle", "left"), ("blue", "square", "up"), ("yellow", "triangle", "right"),
                ("green", "circle", "left"))
    return [spec_captions((c, s, None if image else d))[0] for c, s, d in subjects]


def probe_captions() -> tuple[list, list]:
    """What `vocabulary_probe` fits on and tests on, as (caption, subject) pairs: every training
    caption of the video subjects, and 8 captions of each written only in the held-out vocabulary."""
    videos = [s for s in SUBJECTS if s[2] is not None]
    train = [(c, s) for s in videos for c in training_captions(s)]
    test = [(heldout_caption(s, k), s) for s in videos for k in range(8)]
    return train, test


def vocabulary_probe(x: np.ndarray, x_test: np.ndarray) -> dict:
    """How well an embedding of captions names each attribute of captions written only in the
    held-out vocabulary, when fitted on the training wordings alone: `x` [N, D] and `x_test`
    [M, D] embed `probe_captions()`'s two lists, in order. Returns {probe: {"color" | "shape" |
    "motion": percent right}} for a ridge-regression probe (on standardised features) and a
    nearest-class-mean one (cosine): a ceiling for any model that reads this embedding and
    learns words only from the training captions."""
    train, test = probe_captions()
    mean, std = x.mean(0), x.std(0) + 1e-6
    z, z_test = (x - mean) / std, (x_test - mean) / std
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    out = {"ridge": {}, "centroid": {}}
    for i, attr in enumerate(("color", "shape", "motion")):
        classes = sorted({s[i] for _, s in train})
        y, y_test = (np.array([classes.index(s[i]) for _, s in pairs]) for pairs in (train, test))
        onehot = np.eye(len(classes))[y]  # [N, K]
        w = np.linalg.solve(z.T @ z + 1000.0 * np.eye(z.shape[1]), z.T @ onehot)  # [D, K]
        centroids = unit(np.stack([unit(x)[y == k].mean(0) for k in range(len(classes))]))  # [K, D]
        right = {"ridge": (z_test @ w).argmax(1) == y_test, "centroid": (unit(x_test) @ centroids.T).argmax(1) == y_test}
        for probe, r in right.items():
            out[probe][attr] = 100.0 * float(r.mean())
    return out
