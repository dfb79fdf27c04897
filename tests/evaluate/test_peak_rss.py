"""Peak resident memory per run: a multirun runs every job in one process (Hydra's basic launcher)."""
import sys

import pytest

from asr_compress.evaluate.decode import peak_rss_mb, reset_peak_rss


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs is Linux's")
def test_reset_peak_rss_forgets_an_earlier_runs_peak():
    before = peak_rss_mb()
    block = bytearray(200 * 2**20)  # 200 MiB, touched (zero-filled), then freed
    assert peak_rss_mb() >= before + 150
    del block
    assert reset_peak_rss() is True
    assert peak_rss_mb() < before + 100  # the freed block no longer counts


def test_report_says_when_peak_rss_is_the_processs(tmp_path):
    import json

    from asr_compress.analysis.collect import collect
    from asr_compress.analysis.synthetic import build_sweep
    from asr_compress.report.tables import wer_table

    root = build_sweep(tmp_path / "sweep")  # synthetic runs record no scope: like runs made before per-run peaks
    assert "Peak RSS: not every run recorded a peak of its own" in wer_table(collect(root))
    for m in root.glob("*/metrics.json"):
        m.write_text(json.dumps({**json.loads(m.read_text()), "peak_rss_scope": "run"}))
    assert "Peak RSS:" not in wer_table(collect(root))
