"""Colour preservation (Gatys et al. 2016, "Preserving color in neural artistic style transfer").

- luminance: style is transferred on luminance only (the style's luminance first matched to the
  content's mean and spread), then the content's chroma is put back.
- histogram: the style image's colours are mapped so their mean and covariance equal the
  content's, before the style targets are computed.
Arrays are float [H, W, 3] RGB in [0, 1].
"""

from __future__ import annotations

import numpy as np

# YIQ, as in the paper.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=np.float64
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def to_yiq(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ _RGB_TO_YIQ.T


def from_yiq(yiq: np.ndarray) -> np.ndarray:
    return np.clip(yiq @ _YIQ_TO_RGB.T, 0.0, 1.0).astype(np.float32)


def luminance_image(rgb: np.ndarray) -> np.ndarray:
    """Luminance replicated into three channels: what VGG sees in luminance-only transfer."""
    y = to_yiq(rgb)[..., 0]
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=2).astype(np.float32)


def match_luminance(style_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """The style's luminance image, shifted and scaled to the content luminance's mean and std."""
    ys = to_yiq(style_rgb)[..., 0]
    yc = to_yiq(content_rgb)[..., 0]
    spread = ys.std()
    matched = (ys - ys.mean()) * (yc.std() / spread if spread > 1e-8 else 1.0) + yc.mean()
    return np.repeat(np.clip(matched, 0.0, 1.0)[..., None], 3, axis=2).astype(np.float32)


def recombine_luminance(result_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """The result's luminance with the content's chroma (I and Q)."""
    y = to_yiq(result_rgb)[..., 0]
    iq = to_yiq(content_rgb)[..., 1:]
    return from_yiq(np.concatenate([y[..., None], iq], axis=2))


def _sqrtm(cov: np.ndarray, inverse: bool = False) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, 1e-8)
    power = -0.5 if inverse else 0.5
    return (vectors * values**power) @ vectors.T


def match_histogram(style_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """Map the style's colours to the content's mean and covariance (an affine colour transfer)."""
    s = style_rgb.reshape(-1, 3).astype(np.float64)
    c = content_rgb.reshape(-1, 3).astype(np.float64)
    mu_s, mu_c = s.mean(0), c.mean(0)
    cov_s = np.cov(s, rowvar=False, bias=True) + np.eye(3) * 1e-5
    cov_c = np.cov(c, rowvar=False, bias=True) + np.eye(3) * 1e-5
    transform = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    mapped = (s - mu_s) @ transform.T + mu_c
    return np.clip(mapped, 0.0, 1.0).reshape(style_rgb.shape).astype(np.float32)
