"""What automatic restore repaints unasked, and how much: the safety net's bounds and the
mask's growth, in one place that ``artgan_restore.restorer`` applies and the CLI's help
quotes (so the CLI reads them without importing torch).

Automatic restoration must never ruin a clean picture, so a detection is judged before
anything is repainted (``Finding.verdict``).
"""

DEFAULT_DILATE = 0
"""px added around detected damage: none, because the inpainter reads what a crack's soft
edge leaves, and every pixel added hides real picture from it (20 validation pictures per
level, detection forced: 3 px cost 1.3 dB on scratches, 2.6 dB on craquelure and stains
and 0.8 dB on holes inside the damage, and tripled the share repainted)."""

# A detection that reaches more of the picture than this (``Finding.reach``) is not
# repainted unasked: damage that wide is rare, and a detector that wrong ruins a picture.
MAX_SHARE = 0.10
# ... except a detection the detector is certain of (``detector.CERTAIN``) on at least
# CERTAIN_SHARE of its pixels, which may reach MAX_CERTAIN_SHARE: holes, tears and paint
# losses are found that way, false alarms and cracks are not. On the validation pictures of
# ``calibrate_restore.py`` (``restore/general``, its second look turned and shifted), of the
# detections reaching past 10%, those of holes and losses were 71-93% certain, those of
# craquelure and stains 7-54%, the one on a clean picture 42% (``rocket.jpg``'s towers:
# 13%). The shifted look is less certain of a hole's pixels than the mirrored looks before
# it were (86-98%, when this bound was 0.75).
CERTAIN_SHARE = 0.6
MAX_CERTAIN_SHARE = 0.20
SUSPECT = 0.1
"""The probability from which the safety net counts a pixel as suspected. A detection is
judged by all the detector suspects of it (the pixels above this, connected to where it is
sure), not only by the marks it would repaint: a higher threshold thins a wrong detection
more than it removes it, and the thinner marks slip under the bounds (``rocket.jpg``'s
towers, ``restore/general``: 3.6% marked at 0.1, reaching 12.8%, refused; 1.9% at 0.35,
reaching less than 10%, repainted into ghosts). 0.1 is the threshold at which the safety
net's bounds were set. A threshold below it lowers it too."""
REACH = 3
"""px around each detected pixel that count as reached by the detection. Thin marks spread
over a picture (the lattice of a launch tower, branches against the sky) are where a wrong
detection does most harm, and they mark little: the shipped detector marks 4.4% of
``rocket.jpg``'s towers and lamps, which reach 14.9%. Bounding the reach keeps such a
detection in check however thin its marks, without growing what is repainted."""
# A picture in which the detector is sure (probability >= detector.SURE) of fewer pixels
# than this share (or MIN_SURE_PIXELS) looks undamaged: whatever it marked is a guess.
MIN_SURE_SHARE = 2e-5
MIN_SURE_PIXELS = 12
