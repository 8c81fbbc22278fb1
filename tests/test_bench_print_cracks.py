"""The traced cracks of the real prints: how a detector's mask is scored on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import damage as bench_damage
from bench import print_cracks
from bench.print_cracks import Trace

PRINTS = {f"bopb_old_w_scratch_{c}.png": size
          for c, size in zip("abcd", ((496, 624), (256, 256), (256, 336), (400, 256)))}


def test_every_print_is_traced_on_its_own_pixels() -> None:
    traced = print_cracks.load()
    assert {name: size for name, (size, _) in traced.items()} == PRINTS
    for name, (_, traces) in traced.items():
        assert traces, f"{name} has no traced cracks"
        assert {t.visibility for t in traces} <= set(print_cracks.VISIBILITY)


def test_a_crack_is_covered_by_flags_on_it_or_within_the_tolerance_and_not_beyond() -> None:
    trace = Trace("diagonal", "clear", "skin", ((10, 10), (50, 30), (90, 35)))
    line = print_cracks.line_pixels(trace, (64, 100))
    assert print_cracks.coverage(line, trace) == 1.0
    assert print_cracks.coverage(np.roll(line, print_cracks.TOLERANCE_PX, axis=0), trace) == 1.0
    assert print_cracks.coverage(np.roll(line, print_cracks.TOLERANCE_PX + 3, axis=0), trace) < 0.1
    left = line.copy()
    left[:, 50:] = False
    assert 0.4 < print_cracks.coverage(left, trace) < 0.6
    scored = print_cracks.score(left, [trace, Trace("short", "faint", "skin", ((5, 60), (20, 60)))])
    assert [print_cracks.verdict(r["coverage"]) for r in scored["lines"]] == ["partly", "missed"]
    assert scored["tally"]["clear"] == {"lines": 1, "found": 0, "partly": 1, "missed": 0}
    assert scored["tally"]["faint"]["missed"] == 1


@pytest.mark.parametrize(("crack", "said"), [
    ({"name": "x", "visibility": "obvious", "region": "skin", "points": [[0, 0], [300, 5]]}, "off the 256x256"),
    ({"name": "x", "visibility": "dim", "region": "skin", "points": [[0, 0], [30, 5]]}, "visibility 'dim'"),
    ({"name": "x", "visibility": "faint", "region": "skin", "points": [[0, 0]]}, "1 points"),
])
def test_a_bad_trace_is_refused_with_its_name(tmp_path: Path, crack: dict, said: str) -> None:
    path = tmp_path / "traces.json"
    path.write_text(json.dumps({"p.png": {"size": [256, 256], "cracks": [crack]}}))
    with pytest.raises(ValueError, match=said):
        print_cracks.load(path)


def test_the_target_is_met_only_when_every_traced_crack_is_found() -> None:
    trace = Trace("line", "clear", "skin", ((0, 5), (40, 5)))
    line = print_cracks.line_pixels(trace, (10, 50))
    whole = {"file": "p.png", "net_traced": print_cracks.score(line, [trace])}
    none = {"file": "q.png", "net_traced": print_cracks.score(np.zeros_like(line), [trace])}
    assert bench_damage.traced_target([whole])["met"]
    target = bench_damage.traced_target([whole, none])
    assert not target["met"] and target["measured"] == "1 of 2 found, 0 in part, 1 missed"
