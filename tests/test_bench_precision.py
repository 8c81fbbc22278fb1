"""bench.precision end to end on the CPU, on generated images: the report a GPU host will make."""

from __future__ import annotations

import json

from bench import precision


def test_the_precision_bench_compares_bf16_with_fp32(tmp_path) -> None:
    out = tmp_path / "out"
    precision.main(["--out", str(out), "--data", str(tmp_path / "no-data"), "--images", "2",
                    "--repeats", "1", "--device", "cpu"])
    report = json.loads((out / "results.json").read_text())
    assert [row["dtype"] for row in report["rows"]] == ["float32", "bfloat16"]
    assert "generated" in report["images"]
    bf16 = report["rows"][1]
    assert 30.0 < bf16["psnr_vs_fp32_db"]["min"] and bf16["ms_per_frame"] > 0
    assert {t["name"].split()[0] for t in report["targets"]} == {"bf16"}
    assert "| bf16 |" in (out / "results.md").read_text()
