"""A procedural compositional world: small RGB images of coloured shapes with English captions.

A scene holds one to three objects; each has a shape (a noun), a colour, a size and a texture (adjectives)
and a position. Two-object scenes are laid out so that exactly one spatial relation holds between the
first and the second object ("to the left of", "to the right of", "above", "below"). Scenes are plain
dataclasses, so benchmarks and tests can derive true and false statements about an image exactly.

Two preset distributions mimic the two regimes of CLIP training:

- `pretraining_config()` -- BROAD, "web alt-text": one to three objects, jittered sizes, colours and
  backgrounds, and loose captions (objects named in random order, relations rarely stated, attributes and
  objects dropped, tag lists). Nothing in these captions needs attribute binding or word order to win the
  batch contrast, so a CLIP trained on it learns a bag of words -- as real CLIP does.
- `finetuning_config()` -- NARROW, "COCO": two objects on a plain background, every attribute and the
  relation stated in full canonical sentences ("a small red circle to the left of a large blue square").

Both exclude the `HELD_OUT` colour x shape combinations, kept for the generalisation benchmark.

Rendering is vectorised with numpy (objects grouped by draw layer and shape): ~20k images take seconds.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross", "hexagon", "heart")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (35, 70, 225),
    "yellow": (245, 220, 30),
    "purple": (135, 45, 185),
    "pink": (250, 140, 205),
    "white": (248, 248, 248),
    "black": (15, 15, 15),
}
SIZES: dict[str, float] = {"small": 0.125, "large": 0.2}  # radius as a fraction of the image side
TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted")  # "plain" is never written in captions
RELATIONS: tuple[str, ...] = ("to the left of", "to the right of", "above", "below")
INVERSE_RELATION: dict[str, str] = {
    "to the left of": "to the right of", "to the right of": "to the left of", "above": "below", "below": "above"}
# Two 2x2 blocks of colour x shape: recognising them needs colour AND shape (no single word separates them).
HELD_OUT: tuple[tuple[str, str], ...] = (
    ("purple", "heart"), ("purple", "hexagon"), ("pink", "heart"), ("pink", "hexagon"),
    ("yellow", "cross"), ("yellow", "diamond"), ("white", "cross"), ("white", "diamond"),
)
CAPTION_PREFIXES: tuple[str, ...] = ("a photo of", "a picture of", "an image of", "there is")
SYMMETRIC_JOINERS: tuple[str, ...] = ("and", "with", "next to", "near")
RELATION_MARGIN = 0.1  # of the image side: centres closer than this on the dominant axis state no relation


@dataclass(frozen=True)
class WorldObject:
    """One object of a scene. `x`, `y` (centre) and `radius` are in pixels; `y` grows downwards."""

    shape: str
    colour: str
    size: str
    texture: str
    x: float
    y: float
    radius: float

    def phrase(self, size: bool = True, texture: bool = True, colour: bool = True, article: bool = True) -> str:
        """Noun phrase such as "a small striped red circle" (plain texture is never written)."""
        words = ["a"] if article else []
        if size:
            words.append(self.size)
        if texture and self.texture != "plain":
            words.append(self.texture)
        if colour:
            words.append(self.colour)
        words.append(self.shape)
        return " ".join(words)


@dataclass(frozen=True)
class Scene:
    """A scene: its objects (draw order), background colour and the relation of objects[0] to objects[1]."""

    objects: tuple[WorldObject, ...]
    background: tuple[int, int, int]
    relation: str | None = None

    def caption(self) -> str:
        """The canonical, complete caption (used by the fine-tuning data and the benchmarks)."""
        return canonical_caption(self.objects, self.relation)


def canonical_caption(objects: tuple[WorldObject, ...], relation: str | None) -> str:
    """'a small red circle to the left of a large blue square[ and a small green star]'."""
    if len(objects) == 1:
        return objects[0].phrase()
    text = f"{objects[0].phrase()} {relation} {objects[1].phrase()}"
    return text + "".join(f" and {o.phrase()}" for o in objects[2:])


def relation_holds(a: WorldObject, b: WorldObject, relation: str, image_size: int = 64) -> bool:
    """Whether "a <relation> b" is true: the centres differ by more than the margin on the dominant axis."""
    dx, dy = b.x - a.x, b.y - a.y
    margin = RELATION_MARGIN * image_size
    if relation == "to the left of":
        return dx > margin and abs(dy) < abs(dx)
    if relation == "to the right of":
        return -dx > margin and abs(dy) < abs(dx)
    if relation == "above":
        return dy > margin and abs(dx) < abs(dy)
    if relation == "below":
        return -dy > margin and abs(dx) < abs(dy)
    raise ValueError(f"unknown relation {relation!r}; expected one of {RELATIONS}")


def parse_phrase(phrase: str) -> dict[str, str]:
    """'a small striped red circle' -> {'size': 'small', 'texture': 'striped', 'colour': 'red', 'shape': 'circle'}.

    Only the attributes written appear in the result. Raises ValueError on words outside the world."""
    words = phrase.split()
    if words and words[0] == "a":
        words = words[1:]
    if not words or words[-1] not in SHAPES:
        raise ValueError(f"{phrase!r} does not end with a shape of {SHAPES}")
    out = {"shape": words[-1]}
    for w in words[:-1]:
        key = "size" if w in SIZES else "texture" if w in TEXTURES else "colour" if w in COLOURS else None
        if key is None or key in out:
            raise ValueError(f"{phrase!r}: unexpected word {w!r}")
        out[key] = w
    return out


def parse_caption(caption: str) -> tuple[list[dict[str, str]], str | None]:
    """Parse a canonical caption into its object descriptions and the relation of the first to the second."""
    parts = caption.split(" and ")
    head, relation = parts[0], None
    for rel in RELATIONS:
        if f" {rel} " in head:
            left, right = head.split(f" {rel} ", 1)
            return [parse_phrase(left), parse_phrase(right), *map(parse_phrase, parts[1:])], rel
    return [parse_phrase(head), *map(parse_phrase, parts[1:])], relation


def matches(obj: WorldObject, description: dict[str, str]) -> bool:
    """Whether `obj` has every attribute of `description`."""
    return all(getattr(obj, key) == value for key, value in description.items())


def caption_is_true(scene: Scene, caption: str, image_size: int = 64) -> bool:
    """Exact truth of a canonical caption for a scene: distinct objects match the descriptions and, if a
    relation is stated, it holds between the first two of them."""
    descriptions, relation = parse_caption(caption)
    for chosen in itertools.permutations(scene.objects, len(descriptions)):
        if all(matches(o, d) for o, d in zip(chosen, descriptions)) and (
                relation is None or relation_holds(chosen[0], chosen[1], relation, image_size)):
            return True
    return False


@dataclass
class WorldConfig:
    """A distribution over scenes and captions.

    Args:
        image_size (`int`, defaults to 64): side of the square RGB images.
        num_objects_probs (`tuple[float, float, float]`): probabilities of scenes with 1, 2 and 3 objects.
        shapes, colours, sizes, textures: the vocabulary the scenes draw from.
        texture_probs (`tuple[float, ...]`): probability of each texture (same order as `textures`).
        exclude (`tuple[tuple[str, str], ...]`, defaults to `HELD_OUT`): colour x shape combinations never drawn.
        size_jitter (`float`): relative jitter of an object's radius (uniform in +-size_jitter).
        grid (`int`): if > 0, object centres snap to multiples of `grid` pixels (use the ViT patch size: every
            patch then sees a consistent part of a shape, which makes shapes learnable from few samples).
        colour_jitter (`int`): uniform per-channel jitter of object colours, in 0-255 units.
        background_range (`tuple[int, int]`): grey level of the background is uniform in this range.
        noise (`float`): standard deviation of per-pixel Gaussian noise.
        caption_style (`str`): "canonical" (complete sentences, one per `captions_per_image`) or "web".
        captions_per_image (`int`): canonical style only; the second caption states the inverse relation
            ("B to the right of A"), later ones alternate.
        p_relation (`float`): web style: probability that a multi-object caption states the relation.
        p_partial (`float`): web style: probability that a multi-object caption names only some objects.
        p_drop_size, p_drop_colour, p_drop_texture (`float`): web style: per-object attribute drop rates.
        p_prefix (`float`): web style: probability of a prefix such as "a photo of".
        p_tags (`float`): web style: probability of a tag-list caption ("red circle, blue square").
        p_period (`float`): web style: probability of a final period.
    """

    image_size: int = 64
    num_objects_probs: tuple[float, float, float] = (0.0, 1.0, 0.0)
    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = tuple(COLOURS)
    sizes: tuple[str, ...] = tuple(SIZES)
    textures: tuple[str, ...] = ("plain",)
    texture_probs: tuple[float, ...] = (1.0,)
    exclude: tuple[tuple[str, str], ...] = HELD_OUT
    size_jitter: float = 0.0
    grid: int = 0
    colour_jitter: int = 0
    background_range: tuple[int, int] = (128, 128)
    noise: float = 0.0
    caption_style: str = "canonical"
    captions_per_image: int = 1
    p_relation: float = 0.2
    p_partial: float = 0.2
    p_drop_size: float = 0.4
    p_drop_colour: float = 0.1
    p_drop_texture: float = 0.5
    p_prefix: float = 0.3
    p_tags: float = 0.15
    p_period: float = 0.3

    def __post_init__(self):
        if len(self.num_objects_probs) != 3 or abs(sum(self.num_objects_probs) - 1) > 1e-6:
            raise ValueError(f"num_objects_probs={self.num_objects_probs} must be 3 probabilities summing to 1.")
        if len(self.texture_probs) != len(self.textures) or abs(sum(self.texture_probs) - 1) > 1e-6:
            raise ValueError("texture_probs must give one probability per texture, summing to 1.")
        for name, values, known in (("shapes", self.shapes, SHAPES), ("colours", self.colours, COLOURS),
                                    ("sizes", self.sizes, SIZES), ("textures", self.textures, TEXTURES)):
            unknown = set(values) - set(known)
            if unknown:
                raise ValueError(f"unknown {name} {sorted(unknown)}; the world knows {list(known)}.")
        if self.caption_style not in ("canonical", "web"):
            raise ValueError(f"caption_style={self.caption_style!r}; use 'canonical' or 'web'.")
        if not self.allowed_combinations():
            raise ValueError("every colour x shape combination is excluded.")

    def allowed_combinations(self) -> list[tuple[str, str]]:
        """The (colour, shape) pairs this distribution draws, in a fixed order."""
        excluded = set(map(tuple, self.exclude))
        return [(c, s) for c in self.colours for s in self.shapes if (c, s) not in excluded]


def pretraining_config(**overrides) -> WorldConfig:
    """The BROAD distribution the base model is pretrained on (web-style captions, 1-3 objects)."""
    return dataclasses.replace(WorldConfig(
        num_objects_probs=(0.5, 0.4, 0.1), textures=TEXTURES, texture_probs=(0.8, 0.1, 0.1),
        grid=8, colour_jitter=25, background_range=(70, 180), noise=6.0, caption_style="web",
        p_drop_colour=0.4),
        **overrides)


def finetuning_config(**overrides) -> WorldConfig:
    """The NARROW distribution used for fine-tuning: two objects, complete canonical captions (two per image)."""
    return dataclasses.replace(WorldConfig(
        num_objects_probs=(0.0, 1.0, 0.0), grid=8, colour_jitter=8, background_range=(120, 136),
        noise=3.0, caption_style="canonical", captions_per_image=2), **overrides)


# --------------------------------------------------------------------------------------------- sampling


def _place(rng: np.random.Generator, radii: list[float], relation: str | None, size: int) -> list[tuple[float, float]]:
    """Centres for objects of the given radii: the first two satisfy `relation`, none overlap. Returns [] on failure."""
    gap = 3.0
    centres: list[tuple[float, float]] = []
    if relation is not None:
        swap = relation in ("to the right of", "below")  # then the second object has the smaller coordinate
        r_low, r_high = (radii[1], radii[0]) if swap else (radii[0], radii[1])
        lo, hi = r_low + 1, size - r_high - 1
        dmin = max(r_low + r_high + gap, RELATION_MARGIN * size + 2)
        if hi - lo < dmin:
            return []
        low = rng.uniform(lo, hi - dmin)
        high = rng.uniform(low + dmin, hi)
        rmax = max(r_low, r_high) + 1 + 3
        base = rng.uniform(rmax, size - rmax)
        off = rng.uniform(-3, 3, size=2)
        first, second = (high, low) if swap else (low, high)
        if relation in ("to the left of", "to the right of"):
            centres = [(first, base + off[0]), (second, base + off[1])]
        else:
            centres = [(base + off[0], first), (base + off[1], second)]
    for r in radii[len(centres):]:
        for _ in range(50):
            x, y = rng.uniform(r + 1, size - r - 1, size=2)
            if all((x - cx) ** 2 + (y - cy) ** 2 > (r + rr + gap) ** 2 for (cx, cy), rr in zip(centres, radii)):
                centres.append((x, y))
                break
        else:
            return []
    return centres


def _snap(centres, radii, relation, size: int, grid: int) -> list[tuple[float, float]]:
    """Centres moved to the nearest grid point; [] if that breaks the bounds, the spacing or the relation."""
    snapped = [(float(round(x / grid) * grid), float(round(y / grid) * grid)) for x, y in centres]
    for i, ((x, y), r) in enumerate(zip(snapped, radii)):
        if not (r <= x <= size - r and r <= y <= size - r):
            return []
        if any((x - x2) ** 2 + (y - y2) ** 2 <= (r + r2 + 1) ** 2 for (x2, y2), r2 in zip(snapped[:i], radii[:i])):
            return []
    if relation is not None:
        a, b = (WorldObject("circle", "red", "small", "plain", x, y, r) for (x, y), r in zip(snapped[:2], radii[:2]))
        if [rel for rel in RELATIONS if relation_holds(a, b, rel, size)] != [relation]:
            return []
    return snapped


def sample_scene(config: WorldConfig, rng: np.random.Generator, combos: list[tuple[str, str]] | None = None) -> Scene:
    """Draw one scene from `config` (`combos`: `config.allowed_combinations()`, precomputed by callers)."""
    combos = combos or config.allowed_combinations()
    size = config.image_size
    while True:
        n = int(rng.choice(3, p=config.num_objects_probs)) + 1
        picks = rng.choice(len(combos), size=n)
        sizes = [config.sizes[i] for i in rng.choice(len(config.sizes), size=n)]
        textures = [config.textures[i] for i in rng.choice(len(config.textures), size=n, p=config.texture_probs)]
        radii = [SIZES[s] * size * (1 + rng.uniform(-config.size_jitter, config.size_jitter)) for s in sizes]
        relation = RELATIONS[int(rng.integers(4))] if n >= 2 else None
        centres = _place(rng, radii, relation, size)
        if centres and config.grid:
            centres = _snap(centres, radii, relation, size, config.grid)
        if not centres:
            continue
        objects = tuple(WorldObject(shape=combos[p][1], colour=combos[p][0], size=s, texture=t,
                                    x=float(x), y=float(y), radius=float(r))
                        for p, s, t, r, (x, y) in zip(picks, sizes, textures, radii, centres))
        # Two objects of identical description make captions ambiguous: redraw.
        if len({o.phrase() for o in objects}) < n:
            continue
        grey = int(rng.integers(config.background_range[0], config.background_range[1] + 1))
        return Scene(objects=objects, background=(grey, grey, grey), relation=relation)


def sample_scenes(config: WorldConfig, n: int, seed: int) -> list[Scene]:
    """`n` scenes drawn from `config` with a fixed seed (same seed, same scenes)."""
    rng = np.random.default_rng(seed)
    combos = config.allowed_combinations()
    return [sample_scene(config, rng, combos) for _ in range(n)]


# --------------------------------------------------------------------------------------------- captions


def web_caption(scene: Scene, config: WorldConfig, rng: np.random.Generator) -> str:
    """A loose, alt-text-like caption: true of the image, but never requiring binding or word order."""
    objects = list(scene.objects)
    n = len(objects)
    if n >= 2 and rng.random() < config.p_relation:  # state the (true) relation, in either direction
        a, b = objects[0], objects[1]
        rel = scene.relation
        if rng.random() < 0.5:
            a, b, rel = b, a, INVERSE_RELATION[rel]
        parts = [_loose_phrase(a, config, rng), rel, _loose_phrase(b, config, rng)]
        text = " ".join(parts)
    else:
        order = rng.permutation(n)
        if n >= 2 and rng.random() < config.p_partial:
            order = order[: int(rng.integers(1, n))]
        chosen = [objects[i] for i in order]
        if rng.random() < config.p_tags:
            return ", ".join(_loose_phrase(o, config, rng, article=False) for o in chosen)
        text = _loose_phrase(chosen[0], config, rng)
        for o in chosen[1:]:
            text += f" {SYMMETRIC_JOINERS[int(rng.integers(len(SYMMETRIC_JOINERS)))]} {_loose_phrase(o, config, rng)}"
    if rng.random() < config.p_prefix:
        text = f"{CAPTION_PREFIXES[int(rng.integers(len(CAPTION_PREFIXES)))]} {text}"
    return text + "." if rng.random() < config.p_period else text


def _loose_phrase(o: WorldObject, config: WorldConfig, rng: np.random.Generator, article: bool = True) -> str:
    drops = rng.random(3)
    return o.phrase(size=drops[0] >= config.p_drop_size, texture=drops[1] >= config.p_drop_texture,
                    colour=drops[2] >= config.p_drop_colour, article=article)


def scene_captions(scene: Scene, config: WorldConfig, rng: np.random.Generator) -> list[str]:
    """The captions of one scene under `config.caption_style`."""
    if config.caption_style == "web":
        return [web_caption(scene, config, rng)]
    captions = [scene.caption()]
    if len(scene.objects) >= 2:
        a, b, *rest = scene.objects
        inverse = canonical_caption((b, a, *rest), INVERSE_RELATION[scene.relation])
        captions += [inverse if i % 2 == 1 else captions[0] for i in range(1, config.captions_per_image)]
    return captions[: config.captions_per_image]


# --------------------------------------------------------------------------------------------- rendering


def _polygon(u: np.ndarray, v: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test on arrays of local coordinates."""
    inside = np.zeros(u.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if y0 == y1:
            continue
        crosses = (v < y0) != (v < y1)
        x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at)
    return inside


def _regular(k: int, start: float, radius: float = 1.0) -> np.ndarray:
    angles = start + 2 * np.pi * np.arange(k) / k
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _star_vertices() -> np.ndarray:
    outer, inner = _regular(5, -np.pi / 2), _regular(5, -np.pi / 2 + np.pi / 5, 0.45)
    return np.stack([outer, inner], axis=1).reshape(10, 2)


_TRIANGLE = _regular(3, -np.pi / 2) * 1.1 + np.array([0.0, 0.15])
_HEXAGON = _regular(6, 0.0)
_STAR = _star_vertices() * 1.1 + np.array([0.0, 0.08])


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of `shape` at local coordinates (u right, v down; the shape spans about [-1, 1])."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.82
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.05
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.33) & (av <= 1.0)) | ((av <= 0.33) & (au <= 1.0))
    if shape == "triangle":
        return _polygon(u, v, _TRIANGLE)
    if shape == "hexagon":
        return _polygon(u, v, _HEXAGON)
    if shape == "star":
        return _polygon(u, v, _STAR)
    if shape == "heart":  # (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y up
        x, y = u * 1.15, -v * 1.15 + 0.15
        return (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _texture_mask(texture: str, xs: np.ndarray, ys: np.ndarray) -> np.ndarray | None:
    """Pixels drawn in the object's secondary shade (None for plain)."""
    if texture == "plain":
        return None
    if texture == "striped":  # diagonal stripes, 3 px wide
        return ((xs + ys) // 3) % 2 == 1
    if texture == "dotted":  # 2x2 dots every 4 px
        return (xs % 4 < 2) & (ys % 4 < 2)
    raise ValueError(f"unknown texture {texture!r}; expected one of {TEXTURES}")


def secondary_shade(rgb: np.ndarray) -> np.ndarray:
    """The shade of stripes/dots: darker for light colours, lighter for dark ones."""
    rgb = np.asarray(rgb, dtype=np.float32)
    light = rgb.mean(axis=-1, keepdims=True) > 90
    return np.where(light, rgb * 0.45, rgb + 110.0)


def render(scenes: list[Scene], config: WorldConfig, seed: int = 0, chunk: int = 4096) -> np.ndarray:
    """Render scenes to a uint8 array (N, H, W, 3). Colour jitter and noise come from `seed`.

    Vectorised: each (layer, shape) group of objects is rasterised at once in a window around the objects,
    into a label map (which object covers each pixel); colours are then gathered from a per-scene palette.
    """
    size = config.image_size
    rng = np.random.default_rng(seed)
    out = np.empty((len(scenes), size, size, 3), dtype=np.uint8)
    xs, ys = np.mgrid[0:size, 0:size][::-1]
    patterns = [_texture_mask(t, xs, ys) for t in TEXTURES]  # per texture, (H, W) pixels in the secondary shade
    for start in range(0, len(scenes), chunk):
        batch = scenes[start : start + chunk]
        n = len(batch)
        slots = 1 + max(len(s.objects) for s in batch)  # background + objects
        palette = np.zeros((n, slots, 2, 3), dtype=np.float32)  # (scene, slot, primary/secondary, rgb)
        palette[:, 0, :, :] = np.array([s.background for s in batch], dtype=np.float32)[:, None, :]
        texture_of = np.zeros((n, slots), dtype=np.int64)
        label = np.zeros((n, size, size), dtype=np.int32)
        for layer in range(slots - 1):  # a scene appears at most once per layer; later layers draw on top
            idx = np.array([i for i, s in enumerate(batch) if len(s.objects) > layer])
            objs = [batch[i].objects[layer] for i in idx]
            base = np.array([COLOURS[o.colour] for o in objs], dtype=np.float32)
            base = np.clip(base + rng.uniform(-config.colour_jitter, config.colour_jitter + 1e-6, base.shape), 0, 255)
            palette[idx, layer + 1, 0] = base
            palette[idx, layer + 1, 1] = np.clip(secondary_shade(base), 0, 255)
            texture_of[idx, layer + 1] = [TEXTURES.index(o.texture) for o in objs]
            shapes = np.array([o.shape for o in objs])
            geometry = np.array([(o.x, o.y, o.radius) for o in objs], dtype=np.float32)
            window = 2 * int(np.ceil(geometry[:, 2].max() * 1.2)) + 2
            offsets = np.arange(window) - window // 2
            for shape in np.unique(shapes):
                sel = np.flatnonzero(shapes == shape)
                cx, cy, r = (geometry[sel, k][:, None, None] for k in range(3))
                px = np.floor(cx).astype(np.int64) + offsets[None, None, :]  # (g, 1, w)
                py = np.floor(cy).astype(np.int64) + offsets[None, :, None]  # (g, w, 1)
                u, v = np.broadcast_arrays((px + 0.5 - cx) / r, (py + 0.5 - cy) / r)
                mask = shape_mask(shape, u, v)
                mask &= (px >= 0) & (px < size) & (py >= 0) & (py < size)
                g, yy, xx = np.nonzero(mask)
                label[idx[sel][g], py[g, yy, 0], px[g, 0, xx]] = layer + 1
        slot = np.arange(n, dtype=np.int32)[:, None, None] * slots + label  # index into (scene, slot)
        texture = texture_of.ravel()[slot]
        secondary = np.zeros(label.shape, dtype=bool)
        for t in range(1, len(TEXTURES)):
            secondary |= (texture == t) & patterns[t]
        colours = np.clip(np.rint(palette), 0, 255).astype(np.uint8).reshape(-1, 3)
        image = colours[slot * 2 + secondary]
        if config.noise:
            noise = np.rint(config.noise * rng.standard_normal((n, size, size, 1), dtype=np.float32)).astype(np.int16)
            image = np.clip(image + noise, 0, 255).astype(np.uint8)
        out[start : start + n] = image
    return out


@dataclass
class WorldSample:
    """Scenes, their rendered images (N, H, W, 3) uint8 and their captions (a list per scene)."""

    scenes: list[Scene]
    images: np.ndarray
    captions: list[list[str]]


def generate(config: WorldConfig, n: int, seed: int) -> WorldSample:
    """Sample, caption and render `n` scenes; fully determined by (`config`, `n`, `seed`)."""
    scenes = sample_scenes(config, n, seed)
    rng = np.random.default_rng([seed, 1])
    captions = [scene_captions(s, config, rng) for s in scenes]
    return WorldSample(scenes=scenes, images=render(scenes, config, seed=seed + 1), captions=captions)
