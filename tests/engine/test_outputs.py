"""Losses come from the logits and stay finite and exact far beyond |z| = 1000."""

import numpy as np
import pytest

from engine.outputs import SigmoidOutput, SoftmaxOutput


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_loss_is_finite_and_exact_for_huge_logits(dtype):
    Z = np.array([[1e4, -1e4, 1e4, -1e4, 0.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 0.0, 1.0, 1.0]], dtype=dtype)
    # Right and confident: loss 0. Wrong and confident: loss |z|. z = 0: log 2.
    assert SigmoidOutput().loss_sum(Z, Y) == pytest.approx(2e4 + np.log(2.0), rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_loss_is_finite_and_exact_for_huge_logits(dtype):
    Z = np.array([[1500.0, -1500.0], [0.0, 1500.0], [-1500.0, 0.0]], dtype=dtype)  # (K, m)
    Y = np.array([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]], dtype=dtype)
    # Sample 0 is right (loss ~0); sample 1 is wrong by 3000 in logit.
    assert SoftmaxOutput().loss_sum(Z, Y) == pytest.approx(3000.0, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_probabilities_are_finite_for_huge_logits(dtype):
    sigmoid = SigmoidOutput().probabilities(np.array([[1e4, -1e4]], dtype=dtype))
    softmax = SoftmaxOutput().probabilities(np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=dtype))
    np.testing.assert_array_equal(sigmoid, [[1.0, 0.0]])
    np.testing.assert_array_equal(softmax, [[1.0, 0.0], [0.0, 1.0]])
    assert sigmoid.dtype == dtype
    assert softmax.dtype == dtype
