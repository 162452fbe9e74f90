"""Clean pictures that look like damage: what the detector must learn to leave alone.

A detector that has only seen paintings marks whatever it never met: the lattice of a launch
tower, wires against the sky, a glint on water, film grain, JPEG blocks, a vignette or a
saturated sunset. ``clean_looks`` changes clean training pictures in those ways *before*
damage is drawn on them, so the change is part of the picture and never of the mask:

* the look of old and processed photographs: grayscale, sepia, faded colour, saturated or
  HDR-like colour, vignetting, film grain, JPEG blocking;
* thin real structures: wires and cables, masts, lattices and fences, lines of text;
* façades: rows and columns of windows, darker or lighter than the wall;
* specular highlights and glints: small bright spots with a soft halo, and thin bright arcs
  along the rims of round objects;
* pictures enlarged exactly 2x (nearest, bilinear, bicubic), as upscaled web pictures and
  pixel art are: each 2x2 block then falls in step with the detector's 2x2 fold (or one
  pixel off it), which the detector had never seen and marked as damage on much of such a
  picture (held-out clean photos enlarged 2x bicubic: 17% on average, 76% at worst).

Every change is drawn per image from the caller's generator, like the damage itself.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from artgan_restore.damage import (
    _coordinates,
    _Draw,
    _per_image,
    _scale,
    polyline_points,
    stamp,
    value_noise,
)

_SEPIA = torch.tensor([1.07, 0.94, 0.74])


def _luminance(images: Tensor) -> Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def _chance(draw: _Draw, n: int, p: float) -> Tensor:
    return _per_image(draw.uniform(n) < p)


def photo_looks(draw: _Draw, images: Tensor) -> Tensor:
    """Old-photo and processing looks: grayscale, sepia, faded, saturated, vignetted."""
    n, _, height, width = images.shape
    grey = _luminance(images).expand(-1, 3, -1, -1)
    sepia = (grey * _SEPIA.to(images.device).view(1, 3, 1, 1)).clamp(0, 1)
    lift = _per_image(draw.uniform(n, low=0.05, high=0.25))
    faded = lift + (1 - lift * 1.6) * (images + 0.25 * (grey - images))
    faded = faded * torch.tensor([1.0, 0.97, 0.88], device=images.device).view(1, 3, 1, 1)
    gain = _per_image(draw.uniform(n, low=1.3, high=2.2))
    saturated = grey + gain * (images - grey)
    blurred = F.avg_pool2d(F.pad(images, (4, 4, 4, 4), mode="replicate"), 9, stride=1)
    saturated = saturated + _per_image(draw.uniform(n, low=0.0, high=1.5)) * (images - blurred)
    choice = _per_image(draw.uniform(n))
    out = torch.where(choice < 0.1, grey, torch.where(
        choice < 0.18, sepia, torch.where(
            choice < 0.26, faded.clamp(0, 1), torch.where(
                choice < 0.38, saturated.clamp(0, 1), images))))
    ys, xs = _coordinates(height, width, images.device)
    radius = ((ys / height - 0.5).square() + (xs / width - 0.5).square()).sqrt() / math.sqrt(0.5)
    strength = _per_image(draw.uniform(n, low=0.2, high=0.6))
    vignette = 1 - strength * radius.pow(2.5)
    return torch.where(_chance(draw, n, 0.2), out * vignette, out)


def structures(draw: _Draw, images: Tensor, max_lines: int = 8) -> Tensor:
    """Wires, masts and cables (straight or sagging lines of one width), lattices and fences
    (regular grids in a region) and lines of text, in a dark or light colour of the scene."""
    n, _, height, width = images.shape
    scale = _scale(height, width)
    device = images.device
    # lines: straight or gently sagging, spanning much of the picture
    m = n * max_lines
    # rarer than the damage they resemble: a detector taught that every thin line is clean
    # stops finding scratches
    count = (draw.uniform(n, 1) * (max_lines + 1)).floor() * _chance(draw, n, 0.12).view(-1, 1)
    keep = torch.arange(max_lines, device=device).view(1, -1) < count
    start = torch.stack([draw.uniform(m) * height, draw.uniform(m) * width], dim=1)
    vertical = draw.uniform(m) < 0.4  # masts and poles stand upright
    angle = torch.where(vertical, math.pi / 2 + draw.normal(m) * 0.03,
                        draw.uniform(m) * math.pi)
    length = max(height, width) * draw.uniform(m, low=0.3, high=1.2)
    direction = torch.stack([angle.sin(), angle.cos()], dim=1)
    sag = draw.uniform(m, low=0.0, high=0.06) * length * (~vertical)
    t = torch.linspace(0, 1, 33, device=device).view(1, -1, 1)
    along = start.unsqueeze(1) + direction.unsqueeze(1) * (length.view(-1, 1, 1) * t)
    along[..., 0] += (sag.view(-1, 1) * 4 * t[..., 0] * (1 - t[..., 0]))
    points = polyline_points(along, 0.5)
    steps = points.shape[1]
    radius = scale * draw.uniform(m, low=0.4, high=1.6)
    light = draw.uniform(m) < 0.15
    index = (torch.arange(n, device=device).repeat_interleave(max_lines) + n * light.long())
    canvas = torch.zeros(2 * n, height, width, device=device)
    stamp(canvas, index.view(-1, 1).expand(-1, steps).flatten(), points[..., 0].flatten(),
          points[..., 1].flatten(), radius.view(-1, 1).expand(-1, steps).flatten(),
          (keep.flatten().float() * draw.uniform(m, low=0.6, high=1.0)).view(-1, 1)
          .expand(-1, steps).flatten())
    # lattices and fences: a grid (or one set of bars) of thin lines inside a box
    ys, xs = _coordinates(height, width, device)
    box = draw.uniform(n, 4)
    top, bottom = box[:, 0].minimum(box[:, 1]) * height, box[:, 0].maximum(box[:, 1]) * height
    left, right = box[:, 2].minimum(box[:, 3]) * width, box[:, 2].maximum(box[:, 3]) * width
    tower = draw.uniform(n) < 0.5  # a tall narrow lattice: a pylon or a launch tower
    middle, half = (left + right) / 2, width * draw.uniform(n, low=0.03, high=0.12)
    left = torch.where(tower, middle - half, left)
    right = torch.where(tower, middle + half, right)
    top = torch.where(tower, top * 0.3, top)
    bottom = torch.where(tower, torch.full_like(bottom, float(height)), bottom)
    # a tower is one or two cells wide between its legs, which stand on the box's sides
    cells = 1 + (draw.uniform(n) < 0.5).float()
    spacing = _per_image(torch.where(tower, (right - left) / cells,
                                     draw.uniform(n, low=3.0, high=12.0) * scale))
    rise = spacing * _per_image(draw.uniform(n, low=1.0, high=2.0))  # cells up to 2x as tall
    turn = _per_image(torch.where(tower, draw.normal(n) * 0.02, draw.uniform(n) * math.pi))
    x, y = xs - _per_image(left), ys - _per_image(top)
    u = x * turn.cos() + y * turn.sin()
    v = -x * turn.sin() + y * turn.cos()
    bar = _per_image(draw.uniform(n, low=0.5, high=1.5) * scale)

    def bars(coordinate: Tensor, pitch: Tensor) -> Tensor:
        phase = torch.remainder(coordinate, pitch)
        return (bar + 0.5 - torch.minimum(phase, pitch - phase)).clamp(0, 1)

    grid = torch.maximum(bars(u, spacing), bars(v, rise) * _chance(draw, n, 0.6))
    # a truss: the grid's cells braced corner to corner both ways, as pylons, cranes and
    # launch towers are (a plain grid taught the detector nothing about their X's): the
    # lines u / spacing +- v / rise = k, each pixel at its distance from the nearest
    across = 1 / (spacing.reciprocal().square() + rise.reciprocal().square()).sqrt()
    braces = torch.maximum(bars((u / spacing + v / rise) * across, across),
                           bars((u / spacing - v / rise) * across, across))
    grid = torch.maximum(grid, braces * _chance(draw, n, 0.5))
    inside = ((ys >= _per_image(top)) & (ys < _per_image(bottom))
              & (xs >= _per_image(left) - bar) & (xs <= _per_image(right) + bar))
    lattice = grid * inside * _chance(draw, n, 0.15)
    # text: a row of small glyphs, each a few strokes in its own cell
    glyphs, strokes = 16, 4
    size = _per_image(draw.uniform(n, low=5.0, high=12.0) * scale).view(-1)
    base_y = draw.uniform(n) * height
    base_x = draw.uniform(n) * width * 0.6
    cell = torch.arange(glyphs, device=device).view(1, -1, 1).float()
    vertices = draw.uniform(n, glyphs, strokes, 2)
    glyph_y = base_y.view(-1, 1, 1) + vertices[..., 0] * size.view(-1, 1, 1)
    glyph_x = (base_x.view(-1, 1, 1) + (cell + vertices[..., 1] * 0.7) * size.view(-1, 1, 1)
               * 0.75)
    path = torch.stack([glyph_y, glyph_x], dim=-1).view(n * glyphs, strokes, 2)
    letters = polyline_points(path, 0.5)
    spaces = (draw.uniform(n, glyphs) > 0.15) & _chance(draw, n, 0.1).view(-1, 1)
    text_light = _chance(draw, n, 0.4).view(-1)
    text_index = (torch.arange(n, device=device) + n * text_light.long()).repeat_interleave(glyphs)
    stroke = (size * 0.09).clamp_min(0.5).repeat_interleave(glyphs)
    count = letters.shape[1]
    stamp(canvas, text_index.view(-1, 1).expand(-1, count).flatten(), letters[..., 0].flatten(),
          letters[..., 1].flatten(), stroke.view(-1, 1).expand(-1, count).flatten(),
          spaces.flatten().float().view(-1, 1).expand(-1, count).flatten())
    lit = _chance(draw, n, 0.4)  # a lattice lit against a dark sky, or dark against a light one
    dark_alpha = torch.maximum(canvas[:n].unsqueeze(1), lattice * ~lit)
    light_alpha = torch.maximum(canvas[n:].unsqueeze(1), lattice * lit)
    dark = images * _per_image(draw.uniform(n, low=0.05, high=0.45))
    glow = draw.uniform(n, 3, 1, 1, low=0.6, high=1.0)  # lamps and floodlights: white to amber
    bright = (images + (glow - images) * _per_image(draw.uniform(n, low=0.5, high=0.95)))
    out = images + dark_alpha * (dark - images)
    return out + light_alpha * (bright - out)


def facades(draw: _Draw, images: Tensor, share: float = 0.1, table: int = 32) -> Tensor:
    """A ``share`` of ``images`` with a façade in a box: windows (soft-edged rectangles in
    rows and columns) darker than the wall, or lighter (lit, or glass reflecting the sky),
    each a little different and a few the other way. Rows of windows across a town's
    houses are dark specks and blocks in a regular grid, which a detector that learnt
    holes, losses and stains marks as damage (the shipped detector repainted the windows
    of a held-out photo of a harbour town)."""
    n, _, height, width = images.shape
    device = images.device
    scale = _scale(height, width)
    ys, xs = _coordinates(height, width, device)

    def openings(coordinate: Tensor, pitch: Tensor, fill: Tensor) -> tuple[Tensor, Tensor]:
        """How much each pixel lies in an opening (1 inside, a 1 px ramp at its edges),
        and the index of the opening's row or column."""
        shifted = coordinate - _per_image(draw.uniform(n)) * pitch
        phase = torch.remainder(shifted, pitch) - pitch / 2
        inside = (fill * pitch / 2 + 0.5 - phase.abs()).clamp(0, 1)
        return inside, torch.div(shifted, pitch, rounding_mode="floor").long() % table

    pitch_y = _per_image(draw.uniform(n, low=5.0, high=16.0) * scale)
    pitch_x = _per_image(draw.uniform(n, low=4.0, high=14.0) * scale)
    in_row, row = openings(ys, pitch_y, _per_image(draw.uniform(n, low=0.35, high=0.7)))
    in_col, col = openings(xs, pitch_x, _per_image(draw.uniform(n, low=0.3, high=0.7)))
    # one random number per window, looked up by its row and column
    cell = draw.uniform(n, table * table)
    index = (row * table + col).view(n, -1)
    variation = cell.gather(1, index).view(n, 1, height, width)
    box = draw.uniform(n, 4)
    top = box[:, 0] * height * 0.6
    bottom = top + (0.25 + box[:, 1] * 0.75) * (height - top)
    left = box[:, 2] * width * 0.6
    right = left + (0.25 + box[:, 3] * 0.75) * (width - left)
    inside = ((ys >= _per_image(top)) & (ys < _per_image(bottom))
              & (xs >= _per_image(left)) & (xs < _per_image(right)))
    chosen = _chance(draw, n, share)
    alpha = in_row * in_col * inside * chosen * _per_image(draw.uniform(n, low=0.6, high=1.0))
    lit = _chance(draw, n, 0.3) ^ (variation < 0.1)  # a few windows the other way
    dark = images * (_per_image(draw.uniform(n, low=0.1, high=0.5)) * (0.7 + 0.6 * variation))
    light = draw.uniform(n, 3, low=0.6, high=1.0).view(n, 3, 1, 1)
    bright = images + (light - images) * (0.5 + 0.5 * variation)
    return images + alpha * (torch.where(lit, bright, dark).clamp(0, 1) - images)


def rims(draw: _Draw, images: Tensor, share: float = 0.12) -> Tensor:
    """A ``share`` of ``images`` with a round object (a plate, cup, bowl or lens: an ellipse
    in a colour near the picture's, shaded across) whose rim catches the light: a thin
    bright arc along its edge, mostly inside (a thick one blooms a pixel or two past it),
    fading in and out along it, sometimes a second one beside it. The shipped detector
    repainted such arcs on a saucer's rim in ``examples/photos/coffee.jpg`` (0.31 % of it),
    erasing the highlight; a light scratch is as thin and bright, but does not run along an
    object's edge."""
    n, _, height, width = images.shape
    device = images.device
    scale = _scale(height, width)
    ys, xs = _coordinates(height, width, device)
    side = min(height, width)
    centre_y = _per_image(draw.uniform(n) * height)
    centre_x = _per_image(draw.uniform(n) * width)
    across = _per_image(draw.uniform(n, low=0.08, high=0.45) * side)  # semi-axes, px
    up = across * _per_image(draw.uniform(n, low=0.3, high=1.0))
    turn = _per_image(draw.uniform(n) * math.pi)
    dy, dx = ys - centre_y, xs - centre_x
    u = dx * turn.cos() + dy * turn.sin()
    v = dy * turn.cos() - dx * turn.sin()
    angle = torch.atan2(v, u)
    # along each ray from the centre: px past the edge (negative inside); across the edge
    # of a flat ellipse the distance is shorter, so there its arcs are thinner
    reach = ((angle.cos() / across).square() + (angle.sin() / up).square()).rsqrt()
    outside = (((u / across).square() + (v / up).square()).sqrt() - 1) * reach
    inside = (0.5 - outside).clamp(0, 1)  # a 1 px ramp at the edge
    # the colour of one of the picture's pixels, lit from one side and mottled
    pick = (draw.uniform(n) * height).long() * width + (draw.uniform(n) * width).long()
    colour = images.flatten(2).gather(2, pick.view(n, 1, 1).expand(n, 3, 1)).unsqueeze(-1)
    side_light = _per_image(draw.uniform(n, low=-0.3, high=0.3))
    mottle = value_noise(draw, n, height, width, 8.0 * scale, octaves=3)
    body = colour * (1 + side_light * (u / across).clamp(-1, 1) + 0.06 * mottle)
    # the highlight: a band ``depth`` px in from the edge, over an arc of the rim
    depth = _per_image(draw.uniform(n, low=0.5, high=3.0) * scale)
    thickness = _per_image(draw.uniform(n, low=1.0, high=2.5) * scale)
    start = _per_image(draw.uniform(n) * 2 * math.pi)
    span = _per_image(draw.uniform(n, low=0.4, high=2.5))
    along = torch.remainder(angle - start, 2 * math.pi) / span
    envelope = torch.where(along < 1, torch.sin(math.pi * along.clamp(max=1)), 0.0).sqrt()

    def band(offset: Tensor) -> Tensor:
        return (1 - (-outside - offset).abs() / thickness).clamp(0, 1)

    second = _chance(draw, n, 0.4) * _per_image(draw.uniform(n, low=0.3, high=0.8))
    gap = _per_image(draw.uniform(n, low=2.0, high=5.0) * scale)
    shine = (band(depth) + second * band(depth + gap)).clamp(max=1) * envelope
    strength = _per_image(draw.uniform(n, low=0.5, high=1.0))
    white = torch.where(_chance(draw, n, 0.5),
                        torch.tensor([1.0, 0.93, 0.8], device=device).view(1, 3, 1, 1),
                        torch.ones(1, 3, 1, 1, device=device))
    chosen = _chance(draw, n, share)
    out = images + chosen * inside * (body.clamp(0, 1) - images)
    return out + chosen * strength * shine * (white - out)


def glints(draw: _Draw, images: Tensor, max_spots: int = 12, rays: int = 6) -> Tensor:
    """Specular highlights and lamps: small white spots with a soft halo, some with a
    starburst of thin rays (a lens's diffraction spikes), in a warm or neutral white."""
    n, _, height, width = images.shape
    device = images.device
    scale = _scale(height, width)
    present = (torch.arange(max_spots, device=device).view(1, -1)
               < draw.uniform(n, 1) * max_spots) & _chance(draw, n, 0.3).view(-1, 1)
    ys = draw.uniform(n, max_spots) * height
    xs = draw.uniform(n, max_spots) * width
    radius = scale * draw.uniform(n, max_spots, low=1.0, high=4.0)
    canvas = torch.zeros(n, height, width, device=device)
    index = torch.arange(n, device=device).view(-1, 1).expand(-1, max_spots)
    stamp(canvas, index.flatten(), ys.flatten(), xs.flatten(), radius.flatten(),
          present.flatten().float(), soft=True)
    # starbursts: rays from the spot's centre, fading and thinning outwards
    starred = present & (draw.uniform(n, max_spots) < 0.5)
    steps = 24
    length = (radius * draw.uniform(n, max_spots, low=3.0, high=8.0)).view(n, max_spots, 1, 1)
    turn = draw.uniform(n, max_spots, 1) * math.pi
    angle = turn + torch.arange(rays, device=device).view(1, 1, -1) * (2 * math.pi / rays)
    t = torch.linspace(0, 1, steps, device=device).view(1, 1, 1, -1)
    ray_y = ys.view(n, max_spots, 1, 1) + angle.sin().unsqueeze(-1) * length * t
    ray_x = xs.view(n, max_spots, 1, 1) + angle.cos().unsqueeze(-1) * length * t
    shape = (n, max_spots, rays, steps)
    fade = (1 - t).expand(shape) * starred.view(n, max_spots, 1, 1)
    stamp(canvas, index.view(n, max_spots, 1, 1).expand(shape).flatten(), ray_y.flatten(),
          ray_x.flatten(), (scale * (0.3 + 0.6 * (1 - t))).expand(shape).flatten(),
          (0.9 * fade).flatten())
    warm = torch.where(_chance(draw, n, 0.5),
                       torch.tensor([1.0, 0.85, 0.55], device=device).view(1, 3, 1, 1),
                       torch.ones(1, 3, 1, 1, device=device))
    alpha = canvas.unsqueeze(1)
    return images + alpha * (warm - images)


def grain_and_jpeg(draw: _Draw, images: Tensor) -> Tensor:
    """Film grain (luminance noise, coarser than one pixel at times) and JPEG blocking."""
    n, _, height, width = images.shape
    sigma = _per_image(draw.uniform(n, low=0.01, high=0.05)) * _chance(draw, n, 0.3)
    noise = draw.normal(n, 1, height, width)
    coarse = F.avg_pool2d(F.pad(noise, (1, 1, 1, 1), mode="replicate"), 3, stride=1) * 2
    noise = torch.where(_chance(draw, n, 0.5), coarse, noise)
    out = (images + sigma * noise).clamp(0, 1)
    compress = (draw.uniform(n) < 0.25).tolist()
    quality = (10 + 60 * draw.uniform(n)).round().long().tolist()
    if any(compress):
        pixels = (out * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        rows = []
        for image, pixel, chosen, q in zip(out, pixels, compress, quality, strict=True):
            if chosen:
                image = _jpeg(pixel, q).to(out.device)
            rows.append(image)
        out = torch.stack(rows)
    return out


def _jpeg(pixels: np.ndarray, quality: int) -> Tensor:
    """An (H, W, 3) uint8 picture through JPEG at ``quality``, as (3, H, W) float."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    decoded = np.asarray(Image.open(buffer).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float() / 255


def doubled(draw: _Draw, images: Tensor, share: float = 0.12) -> Tensor:
    """A ``share`` of ``images`` made a 2x enlargement of themselves shrunk by 2 (nearest,
    bilinear or bicubic, a third each), in step with the 2x2 blocks of the picture's grid,
    or for half of them one pixel off it (the picture shifted by one pixel, its edge
    replicated). Only the picture is enlarged: damage drawn afterwards stays sharp."""
    n, _, height, width = images.shape
    chosen = draw.uniform(n) < share
    mode = draw.uniform(n)
    shifted = draw.uniform(n) < 0.5
    out = images.clone()
    for i in chosen.nonzero().flatten().tolist():
        picture = F.pad(images[i:i + 1], (0, width % 2, 0, height % 2), mode="replicate")
        how = "nearest" if mode[i] < 1 / 3 else "bilinear" if mode[i] < 2 / 3 else "bicubic"
        options = {} if how == "nearest" else {"align_corners": False}
        big = F.interpolate(F.avg_pool2d(picture, 2), scale_factor=2.0, mode=how, **options)
        if shifted[i]:
            big = F.pad(big, (1, 0, 1, 0), mode="replicate")
        out[i] = big[0, :, :height, :width].clamp(0, 1)
    return out


def clean_looks(images: Tensor, generator: torch.Generator) -> Tensor:
    """``images`` (N, 3, H, W) in [0, 1], each changed in some of the ways real clean
    pictures differ from clean paintings (see the module's docstring); no damage."""
    draw = _Draw(generator, images.device)
    out = photo_looks(draw, doubled(draw, images.float()))
    out = structures(draw, out)
    out = facades(draw, out)
    out = rims(draw, out)
    out = glints(draw, out)
    return grain_and_jpeg(draw, out.clamp(0, 1))
