"""Synthetic damage for paintings and old photos, with the exact mask of every changed pixel.

Clean/damaged pairs of real scans do not exist in useful numbers, so both the detector and
the inpainter learn from damage painted onto clean pictures: scratches, craquelure, holes and
paint and plaster losses, stains and foxing; and the damage of old photographs: dust and
specks, creases in the emulsion, tears, silvering. Everything is drawn for a whole batch at
once: random parameters come from the caller's generator (a seed fixes the result on any
device), and the pixel work runs on the images' device, because this runs inside the
training loop.

Shapes are made of two primitives: disks stamped along curves (scratches, brush strokes,
foxing spots), which cost per stamped pixel rather than per image pixel, and smooth fields
over the image (value noise, Worley cells for craquelure, blobs and torn edges).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from artgan import ArtganError

KINDS = ("scratches", "craquelure", "holes", "stains", "dust", "creases", "silvering")
LEVELS = {
    "thin": ("scratches",),
    "medium": ("craquelure", "stains"),
    "large": ("holes",),
}
# Severity range per level; each kind scales its counts and sizes with severity in [0, 1].
SEVERITY = {"thin": (0.0, 0.35), "medium": (0.3, 0.7), "large": (0.6, 1.0)}
ALPHA_CUT = 0.1  # damage fainter than this is dropped, so the mask is exactly what changed
# A damaged pixel must also differ visibly from the picture (by this much in some channel,
# just above a scan's noise); a 10 % blend towards a colour close to the paint's own
# changes nothing anyone (or any detector) can see, so it is neither drawn nor marked.
VISIBLE_CHANGE = 4 / 255
CLEAN_SHARE = 0.2  # detector training pictures left undamaged, to learn to leave them alone
OPAQUE_ALPHA = 0.9  # a hiding layer at least this opaque leaves nothing of the picture
# half-sizes of the stamping windows
_STAMP_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A CPU generator from a seed (or the generator itself); None draws a fresh seed."""
    if isinstance(seed, torch.Generator):
        return seed
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return generator


class _Draw:
    """Random numbers from one generator, moved to the images' device."""

    def __init__(self, generator: torch.Generator, device: torch.device):
        self.generator = generator
        self.device = device

    def uniform(self, *shape: int, low: float | Tensor = 0.0, high: float | Tensor = 1.0) -> Tensor:
        values = torch.rand(shape, generator=self.generator, device=self.generator.device)
        return low + (high - low) * values.to(self.device)

    def normal(self, *shape: int) -> Tensor:
        values = torch.randn(shape, generator=self.generator, device=self.generator.device)
        return values.to(self.device)


# --- fields -----------------------------------------------------------------------------


def value_noise(
    draw: _Draw, n: int, height: int, width: int, cell: float, octaves: int = 1
) -> Tensor:
    """Smooth noise in about [-1, 1], (n, 1, H, W): random values on a grid of ``cell`` px,
    bicubically interpolated; each further octave halves the cell and the amplitude."""
    total = torch.zeros(n, 1, height, width, device=draw.device)
    amplitude, norm = 1.0, 0.0
    for _ in range(octaves):
        cell = max(cell, 1.0)
        grid_h, grid_w = math.ceil(height / cell) + 3, math.ceil(width / cell) + 3
        grid = draw.uniform(n, 1, grid_h, grid_w, low=-1.0, high=1.0)
        size = (round(grid_h * cell), round(grid_w * cell))
        up = F.interpolate(grid, size=size, mode="bicubic", align_corners=False)
        top, left = round(cell), round(cell)
        total += amplitude * up[:, :, top : top + height, left : left + width]
        norm += amplitude
        amplitude, cell = amplitude / 2, cell / 2
    return total / norm


def _coordinates(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    ys = torch.arange(height, device=device, dtype=torch.float32).view(1, 1, height, 1)
    xs = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, 1, width)
    return ys, xs


def _per_image(values: Tensor) -> Tensor:
    return values.view(-1, 1, 1, 1)


def worley_edges(
    draw: _Draw, n: int, height: int, width: int, cell: Tensor, warp: Tensor, chunk: int = 1 << 21
) -> Tensor:
    """Distance in px to the nearest edge of a jittered-grid Voronoi diagram, (n, 1, H, W).

    Half of F2 - F1 (distances to the two nearest seeds) approximates the distance to the
    cell border; the coordinates are warped by noise so the cells look hand-made, not
    geometric. ``cell`` and ``warp`` are per image (px). Rows are done in chunks so a large
    scan needs bounded memory.
    """
    device = draw.device
    cell = cell.to(device).view(-1, 1, 1)
    min_cell = float(cell.min())
    grid_h = math.ceil(height / min_cell) + 3
    grid_w = math.ceil(width / min_cell) + 3
    seeds = draw.uniform(n, grid_h, grid_w, 2)  # offsets inside each grid cell, in cells
    warp_y = value_noise(draw, n, height, width, 3 * min_cell, 2)[:, 0] * warp.view(-1, 1, 1)
    warp_x = value_noise(draw, n, height, width, 3 * min_cell, 2)[:, 0] * warp.view(-1, 1, 1)
    seed_y = seeds[..., 0].reshape(n, -1)
    seed_x = seeds[..., 1].reshape(n, -1)
    out = torch.empty(n, 1, height, width, device=device)
    rows = max(1, chunk // max(1, n * width))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        ys = torch.arange(top, bottom, device=device, dtype=torch.float32).view(1, -1, 1)
        xs = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, -1)
        u = (ys + warp_y[:, top:bottom]) / cell + 1.0  # in cells, shifted off the border
        v = (xs + warp_x[:, top:bottom]) / cell + 1.0
        ci = u.floor().clamp(1, grid_h - 2)
        cj = v.floor().clamp(1, grid_w - 2)
        first = torch.full_like(u, math.inf)
        second = torch.full_like(u, math.inf)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                flat = ((ci + di) * grid_w + (cj + dj)).long().flatten(1)
                dy = ci + di + torch.gather(seed_y, 1, flat).view_as(u) - u
                dx = cj + dj + torch.gather(seed_x, 1, flat).view_as(u) - v
                distance = dy.square() + dx.square()
                second = torch.minimum(second, torch.maximum(first, distance))
                first = torch.minimum(first, distance)
        out[:, 0, top:bottom] = (second.sqrt() - first.sqrt()) * 0.5 * cell
    return out


def blobs(
    draw: _Draw, n: int, height: int, width: int, count: int, radius: Tensor, rough: float
) -> Tensor:
    """``count`` ragged ellipses per image as one field, > 0 inside, (n, 1, H, W); ``radius``
    is (n, count) px, and a blob of radius 0 is left out."""
    ys, xs = _coordinates(height, width, draw.device)
    cy = draw.uniform(n, count, low=0.0, high=float(height)).view(n, count, 1, 1)
    cx = draw.uniform(n, count, low=0.0, high=float(width)).view(n, count, 1, 1)
    angle = draw.uniform(n, count, low=0.0, high=math.pi).view(n, count, 1, 1)
    aspect = draw.uniform(n, count, low=0.45, high=1.0).view(n, count, 1, 1)
    r = radius.view(n, count, 1, 1).clamp_min(1.0)
    dy, dx = ys - cy, xs - cx
    along = dx * angle.cos() + dy * angle.sin()
    across = -dx * angle.sin() + dy * angle.cos()
    distance = ((along / r).square() + (across / (r * aspect)).square()).sqrt()
    inside = torch.where(radius.view(n, count, 1, 1) > 0, 1 - distance, -math.inf)
    field = inside.amax(dim=1, keepdim=True)
    scale = float(radius.float().mean().clamp_min(2.0))
    return field + rough * value_noise(draw, n, height, width, scale / 2, octaves=3)


# --- stamping disks along curves --------------------------------------------------------


def stamp(
    canvas: Tensor,
    index: Tensor,
    ys: Tensor,
    xs: Tensor,
    radius: Tensor,
    alpha: Tensor,
    soft: bool = False,
) -> Tensor:
    """Draw disks into ``canvas`` (C, H, W) by maximum: disk k goes into channel ``index[k]``
    at (``ys[k]``, ``xs[k]``) px with ``radius[k]`` and opacity ``alpha[k]``.

    Hard disks are antialiased at their edge; soft ones fade out towards the rim (spots).
    Disks are grouped by size so the work is proportional to the pixels they cover.
    """
    _, height, width = canvas.shape
    flat = canvas.view(-1)
    device = canvas.device
    alpha = alpha.to(device, torch.float32)
    drawn = alpha > 0
    ys, xs, radius, alpha, index = (t.to(device)[drawn] for t in (ys, xs, radius, alpha, index))
    if not len(alpha):
        return canvas
    ys, xs, radius = ys.float(), xs.float(), radius.float()
    reach = (radius + 1.5).ceil()
    bounds = list(_STAMP_BUCKETS)
    if int(reach.max()) > bounds[-1]:
        bounds.append(int(reach.max()))
    lower = 0
    for bucket in bounds:
        chosen = (reach > lower) & (reach <= bucket)
        lower = bucket
        if not bool(chosen.any()):
            continue
        offsets = torch.arange(-bucket, bucket + 1, device=device, dtype=torch.float32)
        cy, cx = ys[chosen].view(-1, 1, 1), xs[chosen].view(-1, 1, 1)
        py = cy.round() + offsets.view(1, -1, 1)
        px = cx.round() + offsets.view(1, 1, -1)
        distance = ((py - cy).square() + (px - cx).square()).sqrt()
        r = radius[chosen].view(-1, 1, 1)
        if soft:
            value = (1 - distance / (r + 0.5)).clamp(0, 1).pow(1.5)
        else:
            value = (r + 0.5 - distance).clamp(0, 1)
        inside = (py >= 0) & (py < height) & (px >= 0) & (px < width)
        value = value * alpha[chosen].view(-1, 1, 1) * inside
        position = py.clamp(0, height - 1) * width + px.clamp(0, width - 1)
        position = position.long() + index[chosen].view(-1, 1, 1) * (height * width)
        flat.scatter_reduce_(0, position.flatten(), value.flatten(), reduce="amax")
    return canvas


def bezier_points(p0: Tensor, p1: Tensor, p2: Tensor, p3: Tensor, steps: int) -> Tensor:
    """Points along cubic Bezier curves: control points (M, 2) -> (M, steps, 2)."""
    t = torch.linspace(0, 1, steps, device=p0.device).view(1, -1, 1)
    a, b, c, d = (p.unsqueeze(1) for p in (p0, p1, p2, p3))
    return (1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t**2 * c + t**3 * d


def polyline_points(vertices: Tensor, spacing: float) -> Tensor:
    """Points every ``spacing`` px (at most) along polylines: (M, V, 2) -> (M, P, 2)."""
    segments = vertices[:, 1:] - vertices[:, :-1]
    longest = float(segments.norm(dim=-1).max()) if segments.numel() else 0.0
    steps = max(2, math.ceil(longest / max(spacing, 0.25)) + 1)
    t = torch.linspace(0, 1, steps, device=vertices.device).view(1, 1, -1, 1)
    points = vertices[:, :-1].unsqueeze(2) + segments.unsqueeze(2) * t
    return points.flatten(1, 2)


# --- the kinds of damage ----------------------------------------------------------------
#
# Each returns layers ``(alpha (n, 1, H, W), colour (n, 3, H, W) or broadcastable[, hides])``
# that are composited bottom to top; ``hides`` (default False) says the colour owes nothing
# to the picture (exposed ground, dirt, a white scratch), so where such a layer is opaque
# nothing of the picture is left to read. ``severity`` is (n,) in [0, 1]; ``on`` (n,)
# switches a kind per image.


def _scale(height: int, width: int) -> float:
    """How much wider than at 256 px a scratch is on a larger scan (grows slower than size)."""
    return max(1.0, min(height, width) / 256) ** 0.5


def scratches(
    draw: _Draw, image: Tensor, severity: Tensor, on: Tensor, max_count: int = 14
) -> list[tuple[Tensor, Tensor]]:
    """Thin curved strokes, light (scraped varnish or emulsion) and dark (dirt), tapering and
    sometimes broken along their length."""
    n, _, height, width = image.shape
    side = min(height, width)
    count = (2 + draw.uniform(n) * (4 + 10 * severity)).round().clamp(max=max_count)
    keep = (torch.arange(max_count, device=draw.device).view(1, -1) < count.view(-1, 1)) & on.view(
        -1, 1
    )
    m = n * max_count
    length = side * draw.uniform(m, low=0.1, high=1.0) * (0.35 + 0.6 * severity.repeat_interleave(
        max_count))
    start = torch.stack([draw.uniform(m) * height, draw.uniform(m) * width], dim=1)
    angle = draw.uniform(m) * 2 * math.pi
    direction = torch.stack([angle.sin(), angle.cos()], dim=1)
    normal = torch.stack([direction[:, 1], -direction[:, 0]], dim=1)
    bend = draw.normal(m, 2) * 0.12 * length.view(-1, 1)
    p1 = start + direction * length.view(-1, 1) / 3 + normal * bend[:, :1]
    p2 = start + direction * length.view(-1, 1) * 2 / 3 + normal * bend[:, 1:]
    p3 = start + direction * length.view(-1, 1)
    steps = max(8, math.ceil(float(length.max()) / 0.5) + 1)
    points = bezier_points(start, p1, p2, p3, steps)  # (m, steps, 2)
    t = torch.linspace(0, 1, steps, device=draw.device).view(1, -1)
    base = _scale(height, width) * draw.uniform(m, low=0.45, high=1.0) * (
        1 + 1.2 * severity.repeat_interleave(max_count)
    )
    radius = base.view(-1, 1) * (0.35 + 0.65 * (math.pi * t).sin().clamp_min(0).pow(0.5))
    gaps = F.interpolate(draw.uniform(m, 1, 6, low=-1.0, high=1.0), size=steps, mode="linear",
                         align_corners=True)[:, 0]
    broken = draw.uniform(m, 1, low=-1.6, high=-0.2)  # most strokes stay mostly continuous
    opacity = draw.uniform(m, 1, low=0.55, high=1.0) * (gaps > broken) * keep.view(-1, 1)
    light = draw.uniform(m) < 0.6
    channel = torch.arange(n, device=draw.device).repeat_interleave(max_count) + n * (~light)
    canvas = torch.zeros(2 * n, height, width, device=draw.device)
    channel = channel.view(-1, 1).expand(-1, steps)
    stamp(canvas, channel.flatten(), points[..., 0].flatten(), points[..., 1].flatten(),
          radius.flatten(), opacity.flatten())
    bright = draw.uniform(n, 3, 1, 1, low=0.82, high=1.0)
    bright = bright * torch.tensor([1.0, 0.98, 0.92], device=draw.device).view(1, 3, 1, 1)
    dark = draw.uniform(n, 1, 1, 1, low=0.04, high=0.25) * torch.tensor(
        [1.0, 0.9, 0.8], device=draw.device).view(1, 3, 1, 1)
    return [(canvas[:n].unsqueeze(1), bright, True), (canvas[n:].unsqueeze(1), dark, True)]


def craquelure(
    draw: _Draw, image: Tensor, severity: Tensor, on: Tensor
) -> list[tuple[Tensor, Tensor]]:
    """Networks of fine cracks in aged paint or varnish: warped Voronoi cell borders, with a
    finer secondary network in places, over a ragged region of the picture."""
    n, _, height, width = image.shape
    side = min(height, width)
    cell = side * draw.uniform(n, low=0.04, high=0.09) * (0.8 + 0.4 * severity)
    cell = cell.clamp_min(6.0)
    edges = worley_edges(draw, n, height, width, cell, cell * 0.25)
    fine = worley_edges(draw, n, height, width, (cell / 2.5).clamp_min(4.0), cell * 0.1)
    scale = _scale(height, width)
    half_width = _per_image(draw.uniform(n, low=0.1, high=0.4) * scale * (1 + 0.5 * severity))
    crack = (half_width + 0.5 - edges).clamp(0, 1)
    patchy = (value_noise(draw, n, height, width, side / 6, 2) > 0.35).float()
    crack = torch.maximum(crack, (half_width * 0.5 + 0.5 - fine).clamp(0, 1) * patchy * 0.7)
    region = blobs(draw, n, height, width, 1,
                      side * (0.2 + 0.45 * severity.view(-1, 1)) * draw.uniform(n, 1, low=0.7),
                      rough=0.35)
    everywhere = _per_image(draw.uniform(n) < 0.05 + 0.2 * severity)
    region = torch.where(everywhere, torch.ones_like(region), (region * 4).clamp(0, 1))
    strength = _per_image(draw.uniform(n, low=0.5, high=0.95) * on)
    alpha = crack * region * strength
    light = _per_image(draw.uniform(n) < 0.2)
    colour = torch.where(
        light,
        draw.uniform(n, 1, 1, 1, low=0.75, high=0.95).expand(-1, 3, -1, -1),
        image * draw.uniform(n, 1, 1, 1, low=0.1, high=0.4),
    )
    return [(alpha, colour)]


def holes(draw: _Draw, image: Tensor, severity: Tensor, on: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Paint losses and tears: ragged blobs, torn edges and missing corners, filled with the
    exposed ground (light gesso or paper, brown canvas or a dark backing)."""
    n, _, height, width = image.shape
    side = min(height, width)
    ys, xs = _coordinates(height, width, draw.device)
    count = 3
    radius = side * draw.uniform(n, count, low=0.025, high=0.06) * (
        1 + 2.5 * severity.view(-1, 1))
    present = draw.uniform(n, count) < torch.stack(
        [torch.ones_like(severity), 0.2 + 0.5 * severity, 0.6 * severity], dim=1)
    radius = radius * present
    field = blobs(draw, n, height, width, count, radius, rough=0.25)
    hole = field > 0

    # a torn edge: depth into the picture from one side, over part of that side's length
    torn = _per_image(draw.uniform(n) < 0.15 + 0.35 * severity)
    edge = _per_image((draw.uniform(n) * 4).long().clamp(max=3))
    into = torch.where(edge == 0, ys, torch.where(
        edge == 1, height - 1 - ys, torch.where(edge == 2, xs, width - 1 - xs)))
    along = torch.where(edge < 2, xs / width, ys / height)
    centre = _per_image(draw.uniform(n))
    span = _per_image(draw.uniform(n, low=0.15, high=0.6))
    bump = (1 - ((along - centre) / span).square()).clamp_min(0)
    depth = side * _per_image(draw.uniform(n, low=0.03, high=0.08) * (1 + 1.5 * severity))
    ragged = 1 + 0.5 * value_noise(draw, n, height, width, side / 20, octaves=3)
    hole |= (into < depth * bump * ragged) & torn

    # a missing corner, cut along a ragged diagonal
    cornered = _per_image(draw.uniform(n) < 0.1 + 0.3 * severity)
    corner = _per_image((draw.uniform(n) * 4).long().clamp(max=3))
    cy = torch.where(corner // 2 == 0, ys, height - 1 - ys)
    cx = torch.where(corner % 2 == 0, xs, width - 1 - xs)
    leg = side * draw.uniform(n, 2, low=0.06, high=0.14) * (1 + 1.2 * severity.view(-1, 1))
    diagonal = cy / _per_image(leg[:, 0]) + cx / _per_image(leg[:, 1])
    hole |= (diagonal < 1 + 0.15 * value_noise(draw, n, height, width, side / 25, 2)) & cornered

    hole = hole & _per_image(on)
    kind = _per_image(draw.uniform(n))
    paper = draw.uniform(n, 1, 1, 1, low=0.8, high=0.95) * torch.tensor(
        [1.0, 0.96, 0.86], device=draw.device).view(1, 3, 1, 1)
    canvas = draw.uniform(n, 1, 1, 1, low=0.35, high=0.55) * torch.tensor(
        [1.0, 0.82, 0.62], device=draw.device).view(1, 3, 1, 1)
    backing = draw.uniform(n, 1, 1, 1, low=0.03, high=0.15).expand(-1, 3, -1, -1)
    plaster = draw.uniform(n, 1, 1, 1, low=0.68, high=0.9) * torch.tensor(
        [1.0, 0.98, 0.94], device=draw.device).view(1, 3, 1, 1)
    ground = torch.where(kind < 0.4, paper, torch.where(
        kind < 0.6, plaster, torch.where(kind < 0.82, canvas, backing)))
    # plaster is grainy, the others nearly flat: nothing of the picture is left in any
    grain = torch.where(_per_image((kind >= 0.4) & (kind < 0.6)), 0.1, 0.04)
    texture = grain * value_noise(draw, n, height, width, 2.0)
    return [(hole.float(), (ground + texture).clamp(0, 1), True)]


def stains(draw: _Draw, image: Tensor, severity: Tensor, on: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Soft water and glue stains with a darker tide line, and foxing: clusters of small
    rust-brown spots, as on old paper and photographs."""
    n, _, height, width = image.shape
    side = min(height, width)
    count = 2
    radius = side * draw.uniform(n, count, low=0.04, high=0.1) * (1 + severity.view(-1, 1))
    radius = radius * (draw.uniform(n, count) < torch.stack(
        [torch.full_like(severity, 0.7), 0.2 + 0.3 * severity], dim=1))
    field = blobs(draw, n, height, width, count, radius, rough=0.3)
    body = (field * 3).clamp(0, 1) * _per_image(draw.uniform(n, low=0.2, high=0.5))
    tide = (-(field / 0.06).square()).exp() * _per_image(draw.uniform(n, low=0.15, high=0.45))
    blotch = torch.maximum(body, tide * (field > -0.1)) * _per_image(draw.uniform(n) < 0.75)
    tint = draw.uniform(n, 1, 1, 1, low=0.55, high=0.85) * torch.tensor(
        [1.0, 0.8, 0.5], device=draw.device).view(1, 3, 1, 1)

    # foxing: spots around a few cluster centres
    spots = 48
    clusters = draw.uniform(n, 3, 2) * torch.tensor([height, width], device=draw.device)
    pick = (draw.uniform(n, spots) * 3).long().clamp(max=2)
    centres = torch.gather(clusters, 1, pick.unsqueeze(-1).expand(-1, -1, 2))
    positions = centres + draw.normal(n, spots, 2) * side * 0.08
    wanted = (8 + 40 * severity).view(-1, 1) * draw.uniform(n, 1)
    present = torch.arange(spots, device=draw.device).view(1, -1) < wanted
    spot_radius = _scale(height, width) * draw.uniform(n, spots, low=0.8, high=3.5)
    canvas = torch.zeros(n, height, width, device=draw.device)
    index = torch.arange(n, device=draw.device).view(-1, 1).expand(-1, spots)
    stamp(canvas, index.flatten(), positions[..., 0].flatten(), positions[..., 1].flatten(),
          spot_radius.flatten(), (draw.uniform(n, spots, low=0.35, high=0.85) * present).flatten(),
          soft=True)
    fox = canvas.unsqueeze(1) * _per_image(draw.uniform(n) < 0.8)
    rust = draw.uniform(n, 1, 1, 1, low=0.35, high=0.6) * torch.tensor(
        [1.0, 0.62, 0.35], device=draw.device).view(1, 3, 1, 1)
    on = _per_image(on)
    return [(blotch * on, image * tint), (fox * on, rust)]


def dust(draw: _Draw, image: Tensor, severity: Tensor, on: Tensor,
         max_specks: int = 160, max_fibres: int = 6) -> list[tuple[Tensor, Tensor]]:
    """Dust and specks on a print or a scan (dark) or on the negative (light), and a few
    short curled fibres: many tiny sharp marks, the damage of old photographs."""
    n, _, height, width = image.shape
    scale = _scale(height, width)
    wanted = (10 + (max_specks - 10) * severity).view(-1, 1) * draw.uniform(n, 1, low=0.3)
    present = (torch.arange(max_specks, device=draw.device).view(1, -1) < wanted) & on.view(-1, 1)
    ys = draw.uniform(n, max_specks) * height
    xs = draw.uniform(n, max_specks) * width
    radius = scale * (0.5 + 1.8 * draw.uniform(n, max_specks).square())
    light = draw.uniform(n, max_specks) < _per_image(draw.uniform(n)).view(-1, 1)
    channel = torch.arange(n, device=draw.device).view(-1, 1) + n * (~light)
    canvas = torch.zeros(2 * n, height, width, device=draw.device)
    stamp(canvas, channel.flatten(), ys.flatten(), xs.flatten(), radius.flatten(),
          (draw.uniform(n, max_specks, low=0.6, high=1.0) * present).flatten())

    # fibres and hairs: short tight curves, 1 px wide
    m = n * max_fibres
    count = (draw.uniform(n) * (1 + max_fibres * severity)).floor().view(-1, 1)
    keep = (torch.arange(max_fibres, device=draw.device).view(1, -1) < count) & on.view(-1, 1)
    start = torch.stack([draw.uniform(m) * height, draw.uniform(m) * width], dim=1)
    controls = [start + draw.normal(m, 2) * scale * 8 for _ in range(3)]
    points = bezier_points(start, *controls, steps=48)
    fibre_light = draw.uniform(m) < 0.5
    fibre_channel = (torch.arange(n, device=draw.device).repeat_interleave(max_fibres)
                     + n * (~fibre_light)).view(-1, 1).expand(-1, 48)
    opacity = (draw.uniform(m, low=0.5, high=0.9) * keep.flatten()).view(-1, 1).expand(-1, 48)
    stamp(canvas, fibre_channel.flatten(), points[..., 0].flatten(), points[..., 1].flatten(),
          torch.full((m * 48,), 0.55 * scale, device=draw.device), opacity.flatten())
    bright = draw.uniform(n, 1, 1, 1, low=0.85, high=1.0).expand(-1, 3, -1, -1)
    dark = draw.uniform(n, 1, 1, 1, low=0.02, high=0.2).expand(-1, 3, -1, -1)
    return [(canvas[:n].unsqueeze(1), bright, True), (canvas[n:].unsqueeze(1), dark, True)]


def creases(draw: _Draw, image: Tensor, severity: Tensor, on: Tensor,
            max_count: int = 3) -> list[tuple[Tensor, Tensor]]:
    """Folds in a photographic print: long, nearly straight lines right across it where the
    emulsion cracked (a light, broken core) with a soft shadow along one side."""
    n, _, height, width = image.shape
    scale = _scale(height, width)
    count = (1 + draw.uniform(n) * (1 + 2 * severity)).floor().clamp(max=max_count)
    keep = (torch.arange(max_count, device=draw.device).view(1, -1) < count.view(-1, 1)) & on.view(
        -1, 1)
    m = n * max_count
    # a line through a random point at a random angle, long enough to cross the picture
    centre = torch.stack([draw.uniform(m) * height, draw.uniform(m) * width], dim=1)
    angle = draw.uniform(m) * math.pi
    direction = torch.stack([angle.sin(), angle.cos()], dim=1)
    normal = torch.stack([direction[:, 1], -direction[:, 0]], dim=1)
    reach = 1.5 * max(height, width)
    start = centre - direction * reach / 2
    bend = draw.normal(m, 2) * 0.02 * reach
    p1 = start + direction * reach / 3 + normal * bend[:, :1]
    p2 = start + direction * reach * 2 / 3 + normal * bend[:, 1:]
    p3 = start + direction * reach
    steps = math.ceil(reach / 0.5) + 1
    points = bezier_points(start, p1, p2, p3, steps)
    radius = scale * draw.uniform(m, 1, low=0.5, high=1.0) * (1 + severity.repeat_interleave(
        max_count).view(-1, 1))
    gaps = F.interpolate(draw.uniform(m, 1, 24, low=-1.0, high=1.0), size=steps, mode="linear",
                         align_corners=True)[:, 0]
    core = draw.uniform(m, 1, low=0.5, high=1.0) * (gaps > -0.6) * keep.view(-1, 1)
    offset = normal.unsqueeze(1) * (radius + 1.0).unsqueeze(-1)
    shadow_points = points + offset
    shadow = draw.uniform(m, 1, low=0.2, high=0.45) * keep.view(-1, 1) * torch.ones_like(gaps)
    index = torch.arange(n, device=draw.device).repeat_interleave(max_count).view(-1, 1)
    canvas = torch.zeros(2 * n, height, width, device=draw.device)
    stamp(canvas, index.expand(-1, steps).flatten(), points[..., 0].flatten(),
          points[..., 1].flatten(), radius.expand(-1, steps).flatten(), core.flatten())
    stamp(canvas, (index + n).expand(-1, steps).flatten(), shadow_points[..., 0].flatten(),
          shadow_points[..., 1].flatten(), (radius * 1.5).expand(-1, steps).flatten(),
          shadow.flatten(), soft=True)
    light = draw.uniform(n, 1, 1, 1, low=0.8, high=0.97).expand(-1, 3, -1, -1)
    return [(canvas[n:].unsqueeze(1), image * 0.45), (canvas[:n].unsqueeze(1), light, True)]


def silvering(draw: _Draw, image: Tensor, severity: Tensor,
              on: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Silver mirroring of an old print: a bluish metallic sheen creeping in from the edges
    over the dark parts of the picture (where there is most silver)."""
    n, _, height, width = image.shape
    side = min(height, width)
    ys, xs = _coordinates(height, width, draw.device)
    into = torch.minimum(torch.minimum(ys, height - 1 - ys), torch.minimum(xs, width - 1 - xs))
    depth = side * _per_image(draw.uniform(n, low=0.04, high=0.12) * (1 + severity))
    ragged = 1 + 0.6 * value_noise(draw, n, height, width, side / 10, octaves=3)
    creep = ((1 - into / (depth * ragged)) * 2).clamp(0, 1)
    luminance = image.mean(dim=1, keepdim=True)
    darkness = (1 - luminance * 2).clamp(0, 1)  # silver shows where the print is dark
    strength = _per_image(draw.uniform(n, low=0.5, high=0.9) * on)
    sheen = draw.uniform(n, 1, 1, 1, low=0.55, high=0.75) * torch.tensor(
        [0.9, 0.95, 1.0], device=draw.device).view(1, 3, 1, 1)
    return [(creep * darkness * strength, sheen)]


_KIND_FUNCTIONS = {"stains": stains, "craquelure": craquelure, "scratches": scratches,
                   "holes": holes, "dust": dust, "creases": creases, "silvering": silvering}
# bottom to top
_ORDER = ("silvering", "stains", "craquelure", "creases", "scratches", "dust", "holes")
# how often ``random_damage`` draws each kind: the old photographs' kinds less often, so the
# detector still sees most of the damage that paintings and photos share
_CHANCE = {"silvering": 0.12, "stains": 0.4, "craquelure": 0.4, "creases": 0.15,
           "scratches": 0.45, "dust": 0.2, "holes": 0.35}


def _composite(
    image: Tensor, layers: list[tuple]
) -> tuple[Tensor, Tensor, Tensor]:
    """Blend layers over ``image``; faint alpha and invisible changes are dropped, so the
    mask is exactly the pixels that visibly changed. Returns ``(damaged, mask, opaque)``:
    ``opaque`` marks the damaged pixels that an opaque hiding layer covers (nothing of the
    picture shows there)."""
    out = image
    mask = torch.zeros_like(image[:, :1], dtype=torch.bool)
    opaque = torch.zeros_like(mask)
    for alpha, colour, *hides in layers:
        alpha = alpha.clamp(0, 1)
        visible = alpha >= ALPHA_CUT
        out = torch.where(visible, out + alpha * (colour - out), out)
        mask |= visible
        if hides and hides[0]:
            opaque |= alpha >= OPAQUE_ALPHA
    out = out.clamp(0, 1)
    mask &= (out - image).abs().amax(dim=1, keepdim=True) >= VISIBLE_CHANGE
    return torch.where(mask, out, image), mask, opaque & mask


def _check_kinds(kinds: Sequence[str]) -> None:
    for kind in kinds:
        if kind not in KINDS:
            raise ArtganError(f"unknown damage kind {kind!r}; use some of {', '.join(KINDS)}")


def synthesize(
    image: Tensor,
    kinds: Sequence[str] | None = None,
    level: str = "medium",
    seed: int | torch.Generator | None = 0,
) -> tuple[Tensor, Tensor]:
    """Damage ``image`` ((3, H, W) or (N, 3, H, W), float in [0, 1]).

    ``level`` ("thin", "medium", "large") sets the severity and, unless ``kinds`` is given,
    the kinds: thin scratches; craquelure with stains and foxing; holes and tears. Returns
    ``(damaged, mask)`` with ``mask`` (1 or N, 1, H, W) float 0/1; every pixel outside the
    mask is bit-identical to ``image``.
    """
    if level not in LEVELS:
        raise ArtganError(f"unknown damage level {level!r}; use one of {', '.join(LEVELS)}")
    kinds = LEVELS[level] if kinds is None else tuple(kinds)
    _check_kinds(kinds)
    single = image.dim() == 3
    batch = image.unsqueeze(0) if single else image
    draw = _Draw(make_generator(seed), batch.device)
    n = batch.shape[0]
    low, high = SEVERITY[level]
    severity = draw.uniform(n, low=low, high=high)
    on = torch.ones(n, dtype=torch.bool, device=batch.device)
    layers = []
    for kind in _ORDER:
        if kind in kinds:
            layers += _KIND_FUNCTIONS[kind](draw, batch.float(), severity, on)
    damaged, mask, _ = _composite(batch.float(), layers)
    damaged = torch.where(mask, damaged.to(image.dtype), batch)
    mask = mask.float()
    return (damaged[0], mask[0]) if single else (damaged, mask)


def damaged_scan(picture: Tensor, level: str, seed: int,
                 kinds: Sequence[str] | None = None) -> tuple[Tensor, Tensor]:
    """A test case as a scan of a damaged painting shows it: ``picture`` ((3, H, W) uint8)
    damaged at ``level`` (with the level's ``kinds`` unless given) with ``seed`` and
    quantised back to uint8, with its (H, W) bool mask. The benchmark, training validation
    and the example score repairs on these."""
    damaged, mask = synthesize(picture.float() / 255, kinds, level=level, seed=seed)
    return (damaged * 255).round().to(torch.uint8), mask[0].bool()


def random_damage(
    images: Tensor, generator: torch.Generator, clean: float = CLEAN_SHARE,
    levels: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Detector training data: each image gets a random mix of kinds and severities (a
    ``clean`` share none at all, so the detector learns to leave intact pictures alone), or,
    for a ``levels`` share of them, the damage of one of ``LEVELS`` picked at random, with
    its kinds and severity range (what ``damaged_scan`` draws for the benchmark).
    Returns ``(damaged, mask, opaque)``, the last two (N, 1, H, W) float 0/1."""
    draw = _Draw(generator, images.device)
    n = images.shape[0]
    severity = draw.uniform(n)
    damaged_at_all = draw.uniform(n) >= clean
    chance = torch.tensor([_CHANCE[kind] for kind in _ORDER], device=images.device)
    pick = draw.uniform(n, len(_ORDER)) < chance
    # make sure every damaged image gets at least one kind
    forced = (draw.uniform(n) * len(_ORDER)).long().clamp(max=len(_ORDER) - 1)
    pick[torch.arange(n, device=images.device), forced] = True
    if levels > 0:
        as_level = draw.uniform(n) < levels
        which = (draw.uniform(n) * len(LEVELS)).long().clamp(max=len(LEVELS) - 1)
        ranges = torch.tensor([SEVERITY[level] for level in LEVELS], device=images.device)
        kinds = torch.tensor([[kind in LEVELS[level] for kind in _ORDER] for level in LEVELS],
                             device=images.device)
        low, high = ranges[which, 0], ranges[which, 1]
        severity = torch.where(as_level, low + (high - low) * severity, severity)
        pick = torch.where(as_level[:, None], kinds[which], pick)
    layers = []
    for position, kind in enumerate(_ORDER):
        on = pick[:, position] & damaged_at_all
        layers += _KIND_FUNCTIONS[kind](draw, images.float(), severity, on)
    damaged, mask, opaque = _composite(images.float(), layers)
    return damaged, mask.float(), opaque.float()


# Brushes of the free-form masks: strokes per image and the radius range, in px for the
# thin brush (scaled like scratches) and as a share of the picture's shorter side otherwise.
_BRUSHES = ((6, 0.6, 2.0), (5, 0.025, 0.05), (5, 0.05, 0.1))


def _brush_strokes(
    draw: _Draw, canvas: Tensor, images: Tensor, strokes: int, low: float, high: float
) -> None:
    """Random-walk strokes of one brush into ``canvas`` for the given image indices."""
    _, height, width = canvas.shape
    side = min(height, width)
    n, vertices = len(images), 8
    m = n * strokes
    present = torch.arange(strokes, device=draw.device).view(1, -1) < (
        strokes * draw.uniform(n, 1, low=0.3, high=1.0)).ceil()
    radius = draw.uniform(n, low=low, high=high).repeat_interleave(strokes)
    step = side * draw.uniform(m, vertices - 1, low=0.04, high=0.14)
    heading = draw.uniform(m, 1) * 2 * math.pi + (draw.normal(m, vertices - 1) * 0.7).cumsum(1)
    moves = torch.stack([heading.sin(), heading.cos()], dim=-1) * step.unsqueeze(-1)
    start = torch.stack([draw.uniform(m) * height, draw.uniform(m) * width], dim=-1)
    path = torch.cat([start.unsqueeze(1), start.unsqueeze(1) + moves.cumsum(dim=1)], dim=1)
    points = polyline_points(path, max(0.5, low * 0.5))
    count = points.shape[1]
    index = images.to(draw.device).repeat_interleave(strokes).view(-1, 1).expand(-1, count)
    stamp(canvas, index.flatten(), points[..., 0].flatten(), points[..., 1].flatten(),
          radius.view(-1, 1).expand(-1, count).flatten(),
          present.flatten().float().view(-1, 1).expand(-1, count).flatten())


def free_form_masks(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    max_area: float = 0.4,
) -> Tensor:
    """Inpainting training masks (n, 1, H, W) float 0/1, from thin scratches to holes of about
    ``max_area`` of the picture: brush strokes (random walks) of thin, medium or thick
    brushes, boxes, and damage-shaped masks (cracks, scratches, losses)."""
    draw = _Draw(generator, torch.device(device))
    side = min(height, width)
    mode = (draw.uniform(n) * 5).long().clamp(max=4)  # three brushes, boxes, damage shapes
    canvas = torch.zeros(n, height, width, device=draw.device)
    for brush, (strokes, low, high) in enumerate(_BRUSHES):
        chosen = (mode == brush).nonzero().flatten()
        if len(chosen):
            unit = _scale(height, width) if brush == 0 else side
            _brush_strokes(draw, canvas, chosen, strokes, unit * low, unit * high)
    masks = canvas.unsqueeze(1) >= 0.5

    # damage-shaped holes: synthetic damage of random kinds over a flat grey picture
    shaped = (mode == 4).nonzero().flatten()
    if len(shaped):
        k = len(shaped)
        grey = torch.full((k, 3, height, width), 0.5, device=draw.device)
        severity = draw.uniform(k)
        kinds = draw.uniform(k, 3)
        layers = scratches(draw, grey, severity, kinds[:, 0] < 0.6)
        layers += craquelure(draw, grey, severity, kinds[:, 1] < 0.4)
        layers += holes(draw, grey, severity, kinds[:, 2] < 0.7)
        masks[shaped] |= _composite(grey, layers)[1]

    # boxes: one to three rectangles (also where nothing else landed in the picture)
    ys, xs = _coordinates(height, width, draw.device)
    boxes = 3
    size = side * draw.uniform(n, boxes, 2, low=0.12, high=0.5)
    top = draw.uniform(n, boxes) * (height - size[..., 0])
    left = draw.uniform(n, boxes) * (width - size[..., 1])
    used = (torch.arange(boxes, device=draw.device).view(1, -1) < 1 + draw.uniform(n, 1) * 2.5)
    inside = ((ys >= top.view(n, boxes, 1, 1)) & (ys < (top + size[..., 0]).view(n, boxes, 1, 1))
              & (xs >= left.view(n, boxes, 1, 1))
              & (xs < (left + size[..., 1]).view(n, boxes, 1, 1)))
    inside = (inside & used.view(n, boxes, 1, 1)).any(dim=1, keepdim=True)
    empty = ~masks.flatten(1).any(dim=1)
    masks |= inside & _per_image((mode == 3) | empty)

    # keep the area under the cap: drop the rows below where the count of masked pixels
    # (from the top) passes it
    cumulative = masks.sum(dim=3, keepdim=True).cumsum(dim=2)
    masks &= cumulative <= max_area * height * width
    return masks.float()
