import subprocess
import sys


def test_importing_the_package_and_config_loads_no_torch_or_espnet():
    code = ("import sys, asr_compress, asr_compress.config, asr_compress.errors; "
            "bad = [m for m in ('torch', 'espnet', 'espnet2') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
