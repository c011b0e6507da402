"""A z-buffer renderer of tool-like objects built from ellipsoid parts (RGB and true depth).

An object is a list of :class:`Part` s in its own frame (x right, y up, z towards
the camera). :func:`render_scene` poses it (random in-plane rotation, 3D tilt,
scale, shift), adds clutter and, for exocentric views, an agent's hand and arm
touching the part that affords the action, and ray-casts every ellipsoid under an
orthographic camera looking down −z, all pixels and parts at once: for pixel
(x, y) and ellipsoid (p − c)ᵀA(p − c) = 1 the front hit solves a quadratic in z.
The nearest hit per pixel is the z-buffer; Lambertian shading, stripe textures
and a textured table plane give the colours.

Parts often share the body's colour and texture, so a handle or spout shows as a
protrusion in depth more than as a colour edge — what makes depth informative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CAMERA_Z = 3.0
"""Depth is ``CAMERA_Z − z``; the table plane lies near z = −1.5 (depth ≈ 4.5)."""
FAR = 5.0
"""Depth maps are divided by this to lie in [0, 1]."""


@dataclass(frozen=True)
class Part:
    """One ellipsoid of an object, in the object's frame (the object spans about [−1, 1]).

    Attributes:
        name: e.g. ``"handle"``.
        affordance: the action the part affords (``"grasp"``), or None.
        center: (x, y, z) centre.
        radii: (r_x, r_y, r_z) semi-axes.
    """

    name: str
    affordance: str | None
    center: tuple[float, float, float]
    radii: tuple[float, float, float]


def _legs(y: float, spots: list[tuple[float, float]]) -> list[Part]:
    return [Part("leg", None, (x, y, z), (0.05, 0.35, 0.05)) for x, z in spots]


OBJECTS: dict[str, tuple[Part, ...]] = {
    "mug": (
        Part("body", "contain", (0, 0, 0), (0.35, 0.45, 0.35)),
        Part("handle", "grasp", (0.45, 0, 0), (0.13, 0.26, 0.09)),
    ),
    "knife": (
        Part("blade", "cut", (0.25, 0, 0), (0.55, 0.1, 0.02)),
        Part("handle", "grasp", (-0.55, 0, 0), (0.28, 0.08, 0.08)),
    ),
    "kettle": (
        Part("body", "contain", (0, 0, 0), (0.45, 0.4, 0.4)),
        Part("spout", "pour", (0.55, 0.15, 0), (0.25, 0.07, 0.07)),
        Part("handle", "grasp", (0, 0.5, 0), (0.3, 0.1, 0.08)),
    ),
    "chair": (
        Part("seat", "sit", (0, 0, 0), (0.5, 0.08, 0.45)),
        Part("back", None, (0, 0.5, -0.4), (0.5, 0.45, 0.06)),
        *_legs(-0.4, [(0.4, 0.35), (-0.4, 0.35), (0.4, -0.35), (-0.4, -0.35)]),
    ),
    "scissors": (
        Part("blade", "cut", (0.3, 0.04, 0), (0.45, 0.06, 0.02)),
        Part("blade", "cut", (0.3, -0.04, 0), (0.45, 0.06, 0.02)),
        Part("loop", "grasp", (-0.35, 0.13, 0), (0.15, 0.12, 0.04)),
        Part("loop", "grasp", (-0.35, -0.13, 0), (0.15, 0.12, 0.04)),
    ),
    "bottle": (
        Part("body", "contain", (0, -0.15, 0), (0.25, 0.45, 0.25)),
        Part("neck", "pour", (0, 0.45, 0), (0.09, 0.2, 0.09)),
    ),
    "pan": (
        Part("body", "contain", (0.2, 0, 0), (0.42, 0.42, 0.08)),
        Part("handle", "grasp", (-0.55, 0, 0), (0.35, 0.06, 0.05)),
    ),
    "hammer": (
        Part("head", "hit", (0, 0.45, 0), (0.3, 0.1, 0.1)),
        Part("handle", "grasp", (0, -0.1, 0), (0.07, 0.5, 0.07)),
    ),
    # objects never seen in training (the unseen split)
    "jug": (
        Part("body", "contain", (0, 0, 0), (0.38, 0.5, 0.38)),
        Part("spout", "pour", (-0.4, 0.4, 0), (0.16, 0.06, 0.08)),
        Part("handle", "grasp", (0.45, 0.05, 0), (0.11, 0.3, 0.09)),
    ),
    "axe": (
        Part("head", "cut", (0.2, 0.45, 0), (0.22, 0.15, 0.03)),
        Part("handle", "grasp", (0, -0.05, 0), (0.06, 0.55, 0.06)),
    ),
    "stool": (
        Part("seat", "sit", (0, 0.1, 0), (0.4, 0.07, 0.4)),
        *_legs(-0.3, [(0.3, 0.2), (-0.3, 0.2), (0, -0.35)]),
    ),
    "mallet": (
        Part("head", "hit", (0, 0.45, 0), (0.35, 0.16, 0.16)),
        Part("handle", "grasp", (0, -0.1, 0), (0.06, 0.45, 0.06)),
    ),
}
SEEN = ("mug", "knife", "kettle", "chair", "scissors", "bottle", "pan", "hammer")
UNSEEN = ("jug", "axe", "stool", "mallet")
AFFORDANCES = ("grasp", "cut", "pour", "contain", "sit", "hit")
SKIN = np.array([[0.95, 0.76, 0.62], [0.78, 0.57, 0.44], [0.55, 0.38, 0.28], [0.99, 0.85, 0.74]])


def affordances_of(obj: str) -> list[str]:
    """The affordances some part of ``obj`` offers, in :data:`AFFORDANCES` order."""
    offered = {p.affordance for p in OBJECTS[obj]}
    return [a for a in AFFORDANCES if a in offered]


@dataclass
class Scene:
    """A rendered view: ``image`` (3, S, S) in [0, 1], ``depth`` (1, S, S) in [0, 1]
    (``(CAMERA_Z − z) / FAR``), and ``part`` (S, S) the index of the object part seen at
    each pixel (−1: table, clutter or hand)."""

    image: np.ndarray
    depth: np.ndarray
    part: np.ndarray


def _rotation(rng: np.random.Generator) -> np.ndarray:
    theta = rng.uniform(0, 2 * np.pi)
    tilt_x, tilt_y = rng.uniform(-0.4, 0.4, 2)
    c, s = np.cos(theta), np.sin(theta)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    c, s = np.cos(tilt_x), np.sin(tilt_x)
    rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    c, s = np.cos(tilt_y), np.sin(tilt_y)
    ry = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return rz @ rx @ ry  # type: ignore[no-any-return]


def _ellipsoid_hits(
    xy: np.ndarray, centers: np.ndarray, forms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Front hits of orthographic rays along −z on K ellipsoids.

    Args:
        xy: (P, 2) pixel positions.
        centers: (K, 3) ellipsoid centres.
        forms: (K, 3, 3) symmetric A of (p − c)ᵀA(p − c) = 1.

    Returns:
        z (K, P) of the hit nearest the camera (−inf where the ray misses) and the
        unnormalised normals (K, P, 3) there.
    """
    q = xy[None] - centers[:, None, :2]  # (K, P, 2)
    a = forms[:, 2, 2][:, None]
    b = forms[:, 0, 2][:, None] * q[..., 0] + forms[:, 1, 2][:, None] * q[..., 1]
    c = (
        forms[:, 0, 0][:, None] * q[..., 0] ** 2
        + 2 * forms[:, 0, 1][:, None] * q[..., 0] * q[..., 1]
        + forms[:, 1, 1][:, None] * q[..., 1] ** 2
        - 1
    )
    disc = b * b - a * c
    s = (-b + np.sqrt(np.maximum(disc, 0))) / a  # the larger root: nearest the camera
    z = np.where(disc >= 0, centers[:, 2:3] + s, -np.inf)
    offsets = np.concatenate([q, s[..., None]], axis=-1)  # (K, P, 3) p − c on the surface
    normals = np.einsum("kij,kpj->kpi", forms, offsets)
    return z, normals


def _stripes(xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(P,) a multiplicative stripe texture in [0.75, 1.0]."""
    angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
    frequency = rng.uniform(6, 18)
    t = xy[:, 0] * np.cos(angle) + xy[:, 1] * np.sin(angle)
    return 0.875 + 0.125 * np.sin(frequency * t + phase)  # type: ignore[no-any-return]


def render_scene(
    obj: str,
    affordance: str,
    size: int,
    rng: np.random.Generator,
    exocentric: bool = False,
    shared_colour: float = 0.75,
    clutter: int = 2,
) -> Scene:
    """Render ``obj`` in a random pose; with ``exocentric``, a hand touches the part
    affording ``affordance``.

    Args:
        obj: a key of :data:`OBJECTS`.
        affordance: one of :func:`affordances_of` ``(obj)``.
        size: image side S in pixels.
        rng: the random generator (pose, colours, light, clutter).
        exocentric: add the agent's hand and arm in contact with the part.
        shared_colour: probability that a part has the body's colour and texture.
        clutter: at most this many distractor blobs on the table.
    """
    parts = OBJECTS[obj]
    rotation = _rotation(rng)
    scale = rng.uniform(0.8, 1.0)
    shift = np.array([*rng.uniform(-0.1, 0.1, 2), 0.0])
    centers = np.array([scale * rotation @ np.array(p.center) + shift for p in parts])
    forms = np.array(
        [rotation @ np.diag(1 / (scale * np.array(p.radii)) ** 2) @ rotation.T for p in parts]
    )
    body = rng.uniform(0.15, 0.9, 3)
    colours = np.array(
        [body if rng.random() < shared_colour else rng.uniform(0.15, 0.9, 3) for _ in parts]
    )
    extra_centers, extra_forms, extra_colours = [], [], []
    for _ in range(rng.integers(0, clutter + 1)):  # distractors off the object's centre
        angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 1.0)
        extra_centers.append([radius * np.cos(angle), radius * np.sin(angle), -1.2])
        extra_forms.append(np.diag(1 / rng.uniform(0.06, 0.15, 3) ** 2))
        extra_colours.append(rng.uniform(0.1, 0.95, 3))
    if exocentric:
        target = [i for i, p in enumerate(parts) if p.affordance == affordance]
        touched = centers[rng.choice(target)]
        skin = SKIN[rng.integers(len(SKIN))]
        reach = rng.uniform(0, 2 * np.pi)  # the arm comes in from this direction
        hand = touched + np.array([0.0, 0.0, 0.12])
        arm = hand + 0.55 * np.array([np.cos(reach), np.sin(reach), 0.3])
        arm_axis = np.array([np.cos(reach), np.sin(reach), 0.0])
        arm_rot = np.array([arm_axis, [-arm_axis[1], arm_axis[0], 0.0], [0, 0, 1]]).T
        extra_centers += [hand, arm]
        extra_forms += [
            np.diag(1 / np.array([0.13, 0.11, 0.09]) ** 2),
            arm_rot @ np.diag(1 / np.array([0.5, 0.09, 0.09]) ** 2) @ arm_rot.T,
        ]
        extra_colours += [skin, skin * 0.9]
    if extra_centers:
        centers = np.concatenate([centers, np.array(extra_centers)])
        forms = np.concatenate([forms, np.array(extra_forms)])
        colours = np.concatenate([colours, np.array(extra_colours)])

    axis = (np.arange(size) + 0.5) / size * 2 - 1
    ys, xs = np.meshgrid(-axis, axis, indexing="ij")  # row 0 is the top (y = +1)
    xy = np.stack([xs.ravel(), ys.ravel()], axis=1)  # (P, 2)
    z, normals = _ellipsoid_hits(xy, centers, forms)
    nearest = z.argmax(axis=0)  # (P,) the z-buffer
    hit = np.isfinite(z.max(axis=0))
    pixels = np.arange(xy.shape[0])
    table_z = -1.5 + rng.uniform(-0.3, 0.3) * xy[:, 1]  # a tilted table plane
    surface = np.where(hit, z[nearest, pixels], table_z)

    light = np.array([*rng.uniform(-0.6, 0.6, 2), 1.0])
    light /= np.linalg.norm(light)
    normal = normals[nearest, pixels]
    normal /= np.linalg.norm(normal, axis=1, keepdims=True).clip(1e-9)
    ambient = rng.uniform(0.3, 0.5)
    shade = ambient + (1 - ambient) * (normal @ light).clip(0)
    texture = _stripes(xy, rng)  # the body's texture, shared by same-coloured parts
    own = np.array([not np.allclose(c, colours[0]) for c in colours])
    other = _stripes(xy, rng)
    pattern = np.where(own[nearest], other, texture)
    rgb_object = colours[nearest] * (shade * pattern)[:, None]
    table = rng.uniform(0.3, 0.8, 3) * (0.9 + 0.1 * _stripes(xy, rng))[:, None]
    rgb = np.where(hit[:, None], rgb_object, table * (0.6 + 0.4 * light[2]))
    rgb = rgb + rng.normal(0, 0.02, rgb.shape)  # sensor noise
    part = np.where(hit & (nearest < len(parts)), nearest, -1)
    depth = (CAMERA_Z - surface) / FAR
    return Scene(
        image=rgb.clip(0, 1).T.reshape(3, size, size).astype(np.float32),
        depth=depth.reshape(1, size, size).astype(np.float32),
        part=part.reshape(size, size),
    )


def part_heatmap(scene: Scene, obj: str, affordance: str, spread: float = 1.5) -> np.ndarray:
    """(S, S) ground truth in AGD20K's style: a Gaussian over the visible pixels of the
    parts that afford ``affordance`` (their mean and covariance, widened by
    ``spread`` pixels), scaled to a maximum of 1; all zeros when none is visible."""
    ids = [i for i, p in enumerate(OBJECTS[obj]) if p.affordance == affordance]
    mask = np.isin(scene.part, ids)
    if not mask.any():
        return np.zeros(scene.part.shape, dtype=np.float32)
    rows, cols = np.nonzero(mask)
    points = np.stack([rows, cols], axis=1).astype(np.float64)
    mean = points.mean(axis=0)
    cov = np.cov(points.T) if len(points) > 1 else np.zeros((2, 2))
    cov = cov + spread**2 * np.eye(2)
    grid = np.indices(scene.part.shape).reshape(2, -1).T - mean  # (P, 2) (row, col)
    mahalanobis = np.einsum("pi,ij,pj->p", grid, np.linalg.inv(cov), grid)
    heat = np.exp(-0.5 * mahalanobis).reshape(scene.part.shape)
    return (heat / heat.max()).astype(np.float32)
