"""Where does a colour reference photo fit a film?

A reference is a colour photo of something the film shows (a uniform, a building, a
car), not a frame of it: taken from elsewhere, at another size, often another angle. So
it is placed by local features, not by comparing whole pictures: ORB corners on the
reference's and the frame's lightness, matched by descriptor with Lowe's ratio test,
and a homography fitted with RANSAC. The count of matches that agree with one
homography, times the share of the reference's outline that lands inside the frame,
says how well the reference fits that frame (so the frame that shows all of it wins
over one where half of it has panned away); a shot whose best frame has fewer than
MIN_INLIERS agreeing matches does not show the reference, and is coloured without it.
Where it fits, the reference's own chroma is warped onto the frame through that
homography.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tintype.media.color import rgb_to_lab

MATCH_SHORT_SIDE = 240  # both pictures are matched at this short side
ORB_FEATURES = 1500
PATCH_PX = 15  # ORB patch: small enough for corners near the edge of a small frame
RATIO = 0.75  # Lowe's ratio test on the two nearest descriptors
RANSAC_PX = 4.0  # reprojection error (px at the matching size) of an agreeing match
MIN_INLIERS = 20  # fewer agreeing matches than this: the reference is not in the frame
SCALE_RANGE = (0.1, 10.0)  # a homography that shrinks or grows the reference more is wrong
FEATHER_PX = 6  # the warped chroma fades in over this many pixels (at the frame's size)


@dataclass(frozen=True)
class Fit:
    """How the reference lies on one frame: agreeing matches, the share of the
    reference's outline inside the frame, and the homography from the reference's
    full-size pixels to the frame's full-size pixels."""

    inliers: int
    inside: float
    homography: np.ndarray

    @property
    def score(self) -> float:
        return self.inliers * self.inside


class ReferenceMatcher:
    """The reference's features, computed once and matched against many frames."""

    def __init__(self, reference_rgb: np.ndarray) -> None:
        self._orb = cv2.ORB_create(ORB_FEATURES, edgeThreshold=PATCH_PX, patchSize=PATCH_PX)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        light, self._scale = _matching_light(reference_rgb)
        self._size = reference_rgb.shape[1], reference_rgb.shape[0]
        self._points, self._descriptors = self._orb.detectAndCompute(light, None)

    def fit(self, frame_rgb: np.ndarray) -> Fit | None:
        """The reference's fit on a frame (uint8 RGB, any size); None where it does not fit."""
        if self._descriptors is None or len(self._points) < MIN_INLIERS:
            return None
        light, scale = _matching_light(frame_rgb)
        points, descriptors = self._orb.detectAndCompute(light, None)
        if descriptors is None or len(points) < MIN_INLIERS:
            return None
        pairs = [m[0] for m in self._matcher.knnMatch(self._descriptors, descriptors, k=2)
                 if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
        if len(pairs) < MIN_INLIERS:
            return None
        source = np.float32([self._points[m.queryIdx].pt for m in pairs])
        target = np.float32([points[m.trainIdx].pt for m in pairs])
        homography, agree = cv2.findHomography(source, target, cv2.RANSAC, RANSAC_PX)
        if homography is None or int(agree.sum()) < MIN_INLIERS:
            return None
        # From full-size reference pixels to full-size frame pixels.
        full = np.diag([1 / scale, 1 / scale, 1]) @ homography @ np.diag([self._scale, self._scale, 1])
        if not _plausible(full):
            return None
        return Fit(int(agree.sum()), _inside(full, reference_size=self._size, frame_rgb=frame_rgb), full)


def warped_chroma(reference_rgb: np.ndarray, fit: Fit, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's Lab chroma laid onto a (height, width) frame through `fit`, and a
    weight (0..1) that is 1 well inside the reference's outline and fades at its edge."""
    ab = rgb_to_lab(reference_rgb)[..., 1:]
    size = (width, height)
    warped = cv2.warpPerspective(ab, fit.homography, size, flags=cv2.INTER_LINEAR)
    inside = np.ones(reference_rgb.shape[:2], np.float32)
    weight = cv2.warpPerspective(inside, fit.homography, size, flags=cv2.INTER_LINEAR)
    weight = cv2.erode(weight, np.ones((3, 3), np.uint8), iterations=FEATHER_PX // 2)
    weight = cv2.GaussianBlur(weight, (0, 0), FEATHER_PX / 2)
    return warped.astype(np.float32), weight.clip(0, 1).astype(np.float32)


def _matching_light(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """8-bit lightness at MATCH_SHORT_SIDE (never enlarged) and the scale applied."""
    height, width = rgb.shape[:2]
    scale = min(1.0, MATCH_SHORT_SIDE / min(height, width))
    small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    return cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2LAB)[..., 0], scale


def _inside(homography: np.ndarray, reference_size: tuple[int, int], frame_rgb: np.ndarray) -> float:
    """Share (0..1) of the reference's warped outline that lies inside the frame."""
    width, height = reference_size
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])[:, None]
    outline = cv2.perspectiveTransform(corners, homography)[:, 0]
    area = cv2.contourArea(outline)
    if area <= 0:
        return 0.0
    frame_h, frame_w = frame_rgb.shape[:2]
    frame = np.float32([[0, 0], [frame_w, 0], [frame_w, frame_h], [0, frame_h]])
    shared, _ = cv2.intersectConvexConvex(outline.astype(np.float32), frame)
    return float(min(1.0, shared / area))


def _plausible(homography: np.ndarray) -> bool:
    """A fit that neither flips, folds nor blows the reference up or down beyond reason."""
    linear = homography[:2, :2] / homography[2, 2]
    det = float(np.linalg.det(linear))
    low, high = SCALE_RANGE
    return low * low < det < high * high and np.isfinite(homography).all()
