"""Validation of restore fine-tuning: scores like quality_restore's, with no side effects."""

import pytest
import torch
from artgan_restore.model import build
from artgan_restore.validation import MAX_PSNR, DetectorValidation, InpainterValidation
from test_restore import TINY

from artgan.errors import ArtganError


def pictures(count=2, size=64, flat=False):
    torch.manual_seed(0)
    if flat:  # a smooth fill repairs a flat picture exactly
        return [torch.full((3, size, size), 120, dtype=torch.uint8) for _ in range(count)]
    return [(torch.rand(3, size, size) * 255).to(torch.uint8) for _ in range(count)]


def test_inpainter_validation_leaves_the_training_network_as_it_was():
    networks = build(**TINY)
    inpainter = networks["inpainter"].train()
    before = {key: value.clone() for key, value in inpainter.state_dict().items()}
    score = InpainterValidation(pictures(), TINY["size"])(networks)
    assert -MAX_PSNR <= score < 0
    assert inpainter.training, "validation switched the training network to eval mode"
    for key, value in inpainter.state_dict().items():
        assert torch.equal(value, before[key]) and value.is_contiguous(), key


def test_inpainter_validation_caps_a_perfect_repair_and_needs_damage():
    networks = build(**TINY)  # an untrained head returns the smooth fill
    score = InpainterValidation(pictures(flat=True), TINY["size"])(networks)
    assert score == -MAX_PSNR
    with pytest.raises(ArtganError, match="no validation picture"):
        InpainterValidation([], TINY["size"])


def test_detector_validation_is_one_minus_f1_plus_the_clean_share_over_budget():
    networks = build(**TINY)
    with torch.no_grad():  # a detector that marks everything: F1 well below 1, and all of
        networks["detector"].head[0].weight.zero_()  # each clean picture marked
        networks["detector"].head[0].bias.fill_(20.0)
    score = DetectorValidation(pictures())(networks)
    assert 0.5 + DetectorValidation.CLEAN_WEIGHT < score < 1 + DetectorValidation.CLEAN_WEIGHT
    with torch.no_grad():  # one that marks nothing: F1 0 on damage, nothing on clean ones
        networks["detector"].head[0].bias.fill_(-20.0)
    assert DetectorValidation(pictures())(networks) == pytest.approx(1.0)
