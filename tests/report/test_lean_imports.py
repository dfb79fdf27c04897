import subprocess
import sys


def test_analysis_and_report_never_import_torch_or_espnet():
    code = ("import sys\n"
            "import asr_compress.analysis.collect, asr_compress.analysis.attribution, asr_compress.analysis.bootstrap\n"
            "import asr_compress.analysis.utterances, asr_compress.analysis.studies\n"
            "import asr_compress.report.write, asr_compress.report.callback, asr_compress.report.cli\n"
            "bad = [m for m in ('torch', 'espnet', 'espnet2') if m in sys.modules]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
