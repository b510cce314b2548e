"""genossm's tensor ops: long FFT convolution, selective scan, Mamba-2's SSD, short causal convolution,
Mamba-2's gated RMSNorm.

Each public op dispatches (argument `backend` or env var `GENOSSM_KERNELS`) between a PyTorch
reference that runs everywhere and a Triton fast path used on CUDA (see `dispatch`). This
package imports nothing from the rest of genossm.
"""

from .causal_conv1d import causal_conv1d, causal_conv1d_ref, causal_conv1d_step
from .dispatch import ENV_VAR, BackendUnavailableError, resolve_backend
from .fftconv import direct_causal_conv, fftconv, fftconv_chunked, fftconv_ref
from .rmsnorm import gated_rms_norm, gated_rms_norm_ref
from .selective_scan import selective_scan, selective_scan_chunked, selective_scan_ref
from .ssd import ssd, ssd_chunked, ssd_quadratic, ssd_ref

__all__ = [
    "ENV_VAR",
    "BackendUnavailableError",
    "causal_conv1d",
    "causal_conv1d_ref",
    "causal_conv1d_step",
    "direct_causal_conv",
    "fftconv",
    "fftconv_chunked",
    "fftconv_ref",
    "gated_rms_norm",
    "gated_rms_norm_ref",
    "resolve_backend",
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_ref",
    "ssd",
    "ssd_chunked",
    "ssd_quadratic",
    "ssd_ref",
]
