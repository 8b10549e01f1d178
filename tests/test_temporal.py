"""Optical flow, warping and the consistency weights on motions whose answer is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from nst_runtime.imaging.motion import consistency, flow, is_shot_cut, motion, warp, warping_error
from nst_runtime.objective.temporal import TEMPORAL_SCALE, TemporalTerm

H, W = 96, 128


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour texture: every patch is distinct, so flow is well defined everywhere."""
    noise = np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 2.0)
    lo, hi = blurred.min(), blurred.max()
    return (blurred - lo) / (hi - lo)


def shifted_pair(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame0, frame1) where the scene moves by (+dx, +dy) pixels: frame1(p) = frame0(p − d)."""
    big = texture(H + 20, W + 20)
    y0, x0 = 10, 10
    return big[y0 : y0 + H, x0 : x0 + W], big[y0 - dy : y0 - dy + H, x0 - dx : x0 - dx + W]


def interior(a: np.ndarray, margin: int = 12) -> np.ndarray:
    return a[margin:-margin, margin:-margin]


def test_flow_points_from_the_first_frame_into_the_second():
    frame0, frame1 = shifted_pair(3, -2)
    backward = flow(frame1, frame0)  # frame1(p) = frame0(p + backward(p)) = frame0(p − d)
    forward = flow(frame0, frame1)
    assert np.allclose(np.median(interior(backward), axis=(0, 1)), [-3, 2], atol=0.1)
    assert np.allclose(np.median(interior(forward), axis=(0, 1)), [3, -2], atol=0.1)


def test_warping_the_previous_frame_by_the_backward_flow_reproduces_the_current_one():
    frame0, frame1 = shifted_pair(3, -2)
    warped = warp(frame0, flow(frame1, frame0))
    assert np.abs(interior(warped) - interior(frame1)).mean() < 0.01
    assert np.abs(interior(frame0) - interior(frame1)).mean() > 0.05  # the motion was really there


def test_a_pure_translation_is_consistent_except_where_it_leaves_the_image():
    frame0, frame1 = shifted_pair(4, 0)
    m = motion(frame0, frame1)
    assert interior(m.weights).mean() > 0.95
    # frame1's left 4 columns came from outside frame0: nothing to warp there
    assert m.weights[:, :2].mean() < 0.1
    assert not is_shot_cut(m)


def test_the_area_a_moving_square_uncovers_is_occluded():
    background = texture(H, W, seed=1)
    square = texture(32, 32, seed=2) * 0.5 + 0.5
    frame0, frame1 = background.copy(), background.copy()
    frame0[32:64, 30:62] = square  # the square moves 8 px to the right
    frame1[32:64, 38:70] = square
    m = motion(frame0, frame1)
    uncovered = m.weights[36:60, 31:37]  # background in frame1 that the square hid in frame0
    still_background = m.weights[4:24, 80:120]
    moved_square = m.weights[38:58, 46:64]
    assert uncovered.mean() < 0.3, uncovered.mean()
    assert still_background.mean() > 0.9
    assert moved_square.mean() > 0.8


def test_a_cut_to_another_scene_is_a_shot_cut():
    assert is_shot_cut(motion(texture(H, W, seed=3), texture(H, W, seed=4)))


def test_consistency_is_one_for_a_zero_flow_and_in_range_for_noise():
    zero = np.zeros((H, W, 2), np.float32)
    assert np.allclose(consistency(zero, zero), 1.0)
    noise = np.random.default_rng(5).normal(0, 3, (H, W, 2)).astype(np.float32)
    c = consistency(noise, noise)
    assert c.min() >= 0.0 and c.max() <= 1.0 and c.mean() < 0.2


def test_temporal_term_is_the_weighted_mean_square_at_every_scale():
    target = texture(H, W, seed=6)
    weights = np.ones((H, W), np.float32)
    weights[:, : W // 2] = 0.0
    term = TemporalTerm(target, weights, weight=2.0)
    x = torch.from_numpy(texture(H, W, seed=7).transpose(2, 0, 1).copy())[None].requires_grad_(True)
    loss = term.at(H, W, torch.device("cpu"))(x)
    expected = 2.0 * float((weights[..., None] * (x.detach()[0].permute(1, 2, 0).numpy() - target) ** 2).sum())
    assert float(loss.detach()) == pytest.approx(TEMPORAL_SCALE * expected / (3 * H * W), rel=1e-5)
    loss.backward()
    assert float(x.grad[..., : W // 2].abs().max()) == 0.0 and float(x.grad.abs().max()) > 0
    coarse = term.at(H // 2, W // 2, torch.device("cpu"))
    assert float(coarse(torch.rand(1, 3, H // 2, W // 2))) > 0


def test_warping_error_is_zero_for_outputs_that_follow_the_motion():
    frames = list(shifted_pair(2, 1))
    assert warping_error(frames, frames) < 1e-3
    flicker = [frames[0], np.clip(frames[1] + 0.2 * texture(H, W, seed=8), 0, 1)]
    assert warping_error(flicker, frames) > 0.01
