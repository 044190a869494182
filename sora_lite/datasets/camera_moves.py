"""Camera Moves (spec v1, `shared/specs/camera-moves.md`): a virtual camera pans, zooms or
rotates over one of scikit-image's bundled photographs, so the caption fully determines the
video and real pixels can be scored exactly.

`render(photo, move, H, W, T, rng)` draws one clip; `example(split, i, H, W, T)` is the pure
function of `(split, i, H, W, T)` the spec asks for (datasets/generated.py stores its clips
for training: `generated.CameraMoves`).
"""

import functools
import zlib

import numpy as np

# subject -> the skimage.data function (and index) that loads its photograph
PHOTOS = {"astronaut": ("astronaut", None), "cat": ("chelsea", None), "coffee cup": ("coffee", None),
          "rocket": ("rocket", None), "motorcycle": ("stereo_motorcycle", 0), "galaxies": ("hubble_deep_field", None),
          "retina": ("retina", None), "tissue sample": ("immunohistochemistry", None)}
SUBJECTS = tuple(PHOTOS)
MOVES = ("pans left", "pans right", "pans up", "pans down", "zooms in", "zooms out", "rotates clockwise",
         "rotates counterclockwise")
TEMPLATES = ("{subject}, camera {move}", "the camera {move} over the {subject}",
             "a shot of the {subject} as the camera {move}")
HELDOUT = (("astronaut", "zooms out"), ("cat", "pans right"), ("coffee cup", "rotates clockwise"),
           ("rocket", "pans down"), ("motorcycle", "zooms in"), ("galaxies", "pans left"),
           ("retina", "rotates counterclockwise"), ("tissue sample", "pans up"))
SEEN = tuple((s, m) for s in SUBJECTS for m in MOVES if (s, m) not in HELDOUT)  # 56 combinations
PAN, ZOOM, ROTATE = 0.3, 0.6, 30.0  # pan: fraction of the view; zoom: size factor; rotation: degrees


@functools.cache
def photo(subject: str) -> np.ndarray:
    """float64 [h, w, 3] in [0, 255]: the subject's photograph, offline from skimage.data."""
    from skimage import data  # the `camera` extra; only this data set needs it

    name, index = PHOTOS[subject]
    image = getattr(data, name)()
    return np.asarray(image if index is None else image[index], np.float64)[..., :3]


def sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of `image` [h, w, 3] at continuous points (pixel centres at k + 0.5),
    edges clamped: [..., 3] for x, y [...]."""
    h, w = image.shape[:2]
    x, y = np.clip(x - 0.5, 0, w - 1), np.clip(y - 0.5, 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), w - 2), np.minimum(np.floor(y).astype(int), h - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def camera(move: str, f: np.ndarray, s0: float, aspect: float):
    """(centre offset [F, 2] (x, y), window height [F], angle in degrees [F]) at clip fractions f."""
    offset, size, angle = np.zeros((len(f), 2)), np.full(len(f), s0), np.zeros(len(f))
    if move.startswith("pans"):
        axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[move.split()[1]]
        offset[:, axis] = sign * PAN * s0 * (aspect if axis == 0 else 1.0) * f
    elif move == "zooms in":
        size = s0 * ZOOM**f
    elif move == "zooms out":
        size = s0 * ZOOM ** (1 - f)
    else:
        angle = (ROTATE if move == "rotates clockwise" else -ROTATE) * f
    return offset, size, angle


def render(subject: str, move: str, height: int, width: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [T, H, W, 3]: the camera's view of the subject's photo over the clip."""
    if height < 16 or width < 16 or frames < 2:
        raise ValueError(f"Camera Moves needs H, W >= 16 and T >= 2; got {frames}x{height}x{width}")
    image = photo(subject)
    ph, pw = image.shape[:2]
    aspect = width / height
    f = np.arange(frames) / (frames - 1)
    u = rng.uniform(0.5, 0.7)
    while True:  # the start centre keeps the window inside the photo in every frame
        s0 = u * min(ph, pw / aspect)
        offset, size, angle = camera(move, f, s0, aspect)
        rad = np.deg2rad(angle)
        half_w = size * aspect / 2 * np.abs(np.cos(rad)) + size / 2 * np.abs(np.sin(rad))  # [F] bounding box
        half_h = size * aspect / 2 * np.abs(np.sin(rad)) + size / 2 * np.abs(np.cos(rad))
        low = np.array([np.max(half_w - offset[:, 0]), np.max(half_h - offset[:, 1])])
        high = np.array([np.min(pw - half_w - offset[:, 0]), np.min(ph - half_h - offset[:, 1])])
        if (low <= high).all():
            break
        u *= 0.9
    centre = low + rng.uniform(size=2) * (high - low)  # (x, y)
    # Canvas pixel centres as offsets from the view's centre, in units of the window height.
    dx = ((np.arange(width) + 0.5) / width - 0.5) * aspect  # [W]
    dy = (np.arange(height) + 0.5) / height - 0.5  # [H]
    dx, dy = np.meshgrid(dx, dy)  # [H, W]
    video = []
    for k in range(frames):
        c, s = np.cos(np.deg2rad(angle[k])), np.sin(np.deg2rad(angle[k]))
        x = centre[0] + offset[k, 0] + size[k] * (c * dx - s * dy)  # rotated window -> photo
        y = centre[1] + offset[k, 1] + size[k] * (s * dx + c * dy)
        video.append(sample(image, x, y))
    return np.clip(np.round(np.stack(video)), 0, 255).astype(np.uint8)


def caption(subject: str, move: str, template: int = 0) -> str:
    return TEMPLATES[template].format(subject=subject, move=move)


# One attribute alone ("the camera pans left" over any photo, "the cat" under any move), so
# each attribute's words learn their effect apart from the other's: held-out pairs are new
# combinations of words that were each seen.
PARTS = ("the camera {move}", "the {subject}")


def training_captions(subject: str, move: str, partial: int) -> list[str]:
    """What a clip of (subject, move) trains on: its templates, and with `partial` = n the
    templates twice and each attribute alone n times (n / (3 + n) of the draws name one
    attribute: a quarter for n = 1, half for n = 3)."""
    full = [caption(subject, move, t) for t in range(len(TEMPLATES))]
    return full + full + [p.format(subject=subject, move=move) for p in PARTS] * partial if partial else full


def example(split: str, index: int, height: int, width: int, frames: int) -> dict:
    """Example `index` of `split`: a pure function of its arguments. train draws its combination
    at random; the evaluation splits cycle through theirs (validation: the 56 seen ones)."""
    rng = np.random.default_rng([zlib.crc32(split.encode()), index, height, width, frames])
    if split == "train":
        subject, move = SEEN[rng.integers(len(SEEN))]
    else:
        combos = SEEN if split == "validation" else HELDOUT
        subject, move = combos[index % len(combos)]
    template = int(rng.integers(len(TEMPLATES)))
    return {"video": render(subject, move, height, width, frames, rng), "caption": caption(subject, move, template),
            "subject": subject, "move": move}

