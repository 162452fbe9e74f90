"""The inpainter's Fourier transforms as matrix products (``artgan_restore.spectral``), as
exported models compute them: the same as torch.fft's to float rounding, at any size."""

import pytest
import torch
from artgan_restore import spectral


@pytest.mark.parametrize("size", [(16, 16), (12, 15), (7, 10), (1, 1)])
def test_matrix_transforms_match_torch_fft(size):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size)
    real, imag = spectral.rfft2(x)
    spectrum = torch.fft.rfft2(x, norm="ortho")
    torch.testing.assert_close(real, spectrum.real, atol=2e-5, rtol=0)
    torch.testing.assert_close(imag, spectrum.imag, atol=2e-5, rtol=0)
    # any spectrum, also one no real picture has (imaginary constant and Nyquist bins)
    given = torch.randn(2, 3, size[0], size[1] // 2 + 1, 2)
    expected = torch.fft.irfft2(torch.complex(given[..., 0], given[..., 1]), s=size,
                                norm="ortho")
    torch.testing.assert_close(spectral.irfft2(given[..., 0], given[..., 1], *size), expected,
                               atol=5e-5, rtol=0)


def test_a_traced_fourier_unit_computes_what_the_eager_one_does():
    # traced, ``exporting()`` holds and the unit takes the matrix products, at any size
    from artgan_restore.inpainter import FourierUnit

    torch.manual_seed(0)
    unit = FourierUnit(4).eval()
    traced = torch.jit.trace(unit, torch.randn(2, 4, 16, 16))
    assert "fft" not in str(traced.graph)
    for size in [(16, 16), (12, 20)]:
        x = torch.randn(2, 4, *size)
        torch.testing.assert_close(traced(x), unit(x), atol=1e-4, rtol=0)
