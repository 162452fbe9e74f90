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
