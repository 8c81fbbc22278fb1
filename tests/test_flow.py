"""media.flow: a flow depends on its two images only."""

from __future__ import annotations

import numpy as np

from tests.test_temporal import moving, texture
from tintype.media import flow as fl


def test_a_small_image_does_not_change_later_flows():
    frames = [fl.lightness_u8(f) for f in moving(2, 64, 96, seed=3)]
    first = fl.flow(frames[1], frames[0])
    tiny = fl.lightness_u8(texture(48, 48, 4))  # below DIS's finest scale: OpenCV lowers it
    fl.flow(tiny, tiny)
    assert np.array_equal(fl.flow(frames[1], frames[0]), first)
