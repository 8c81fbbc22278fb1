"""bench.archival_collection without running it: the photos it makes and the report's wording."""

from __future__ import annotations

from PIL import Image

from bench import archival_collection as bench


def test_photos_are_generated_greyscale_when_the_shared_data_is_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "SHARED", tmp_path / "absent")
    said = bench.make_photos(tmp_path / "p", 3)
    made = sorted((tmp_path / "p").glob("*.jpg"))
    assert len(made) == 3 and "generated" in said
    with Image.open(made[0]) as img:
        assert img.mode == "L" and img.size == bench.GENERATED_SIZE


def test_the_report_says_the_single_rate_is_a_sample():
    result = {"photos": 500, "source": "generated", "folder": {"seconds": 100.0, "first_result_seconds": 6.5,
                                                               "written": 500},
              "folder_photos_per_s": 5.0, "single_sample": 20, "single_seconds": [4.0] * 20,
              "single_photos_per_s": 0.25, "speedup": 20.0, "cpu_count": 2}
    text = bench.markdown(result)
    assert "**20.0x**" in text and "First result after 6.5 s" in text
    assert "sample of 20 of the 500" in text
    result["folder"]["first_result_seconds"] = None
    assert "No result appeared" in bench.markdown(result) and "**20.0x**" in bench.markdown(result)
