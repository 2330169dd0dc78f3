"""benchmarks/gpu_check.sh end to end without a GPU: the CUDA simulator at tiny sizes.

The real run happens on the GPU test machine; these tests make sure the script
that runs there works: every stage, the JSON it writes, the wheel parts it joins.
They start the script in a subprocess with ``NUMBA_ENABLE_CUDASIM=1`` whatever
this process runs under.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def run_check(tmp_path: Path, *args: str, **env_extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = dict(
        os.environ,
        NUMBA_ENABLE_CUDASIM="1",
        OUT=str(tmp_path / "out"),
        PYTHON=sys.executable,
        GPU_CHECK_WHEELS=str(tmp_path / "nowheels"),
        GPU_CHECK_SITE=str(tmp_path / "site"),
        TMPDIR=str(tmp_path),
    )
    env.pop("PYTHONPATH", None)
    env.update(env_extra)
    # no time budget: on a loaded machine the simulator is slow, and these tests check the flow
    out = subprocess.run(
        ["bash", str(SCRIPT), *args, "--budget-s", "1e9"],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    res = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    return out, res


def test_cpu_smoke_writes_every_figure(tmp_path):
    out, res = run_check(tmp_path, "--cpu-smoke")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert res["ok"] is True
    st = res["stages"]
    env = st["env"]
    assert env["cuda_mode"] == "simulator"
    assert env["objectives_import_pulled"] == []  # neither xgboost nor lightgbm (nor sklearn/pandas)
    assert st["bandwidth"]["numba_copy_GBps"] > 0
    cases = st["kernels"]["cases"]
    assert st["kernels"]["ok"] is True
    # 2 sizes x 2 margin dtypes x (BCE only + exact/k4 x 2 losses) + the giant group (no BCE-only case)
    assert len(cases) == 2 * 2 * 5 + 2 * 4
    assert {c["margin"] for c in cases} == {"float32", "float64"}
    assert {c["case"] for c in cases} == {
        "bce_only",
        "squared_hinge_exact",
        "squared_hinge_k4",
        "logistic_exact",
        "logistic_k4",
    }
    assert {c["layout"] for c in cases} == {"groups_of_25", "giant_group"}
    assert len({c["rows"] for c in cases if c["layout"] == "groups_of_25"}) == 2
    for c in cases:
        assert c["ok"] and c["bitwise_equal"], c  # the simulator runs the CPU's code: exactly equal
        assert c["bytes"] > 0 and c["kernel_GBps"] > 0 and c["gpu_device_margins_s"] > 0
    fit = st["fit"]
    try:
        import xgboost  # noqa: F401
    except ImportError:
        assert "skipped" in fit and "xgboost" in fit["skipped"]
    else:
        runs = fit["runs"]
        assert set(runs) == {"native_binary_logistic", "pwiser_gpu_exact", "pwiser_gpu_k4"}
        copies = runs["pwiser_gpu_exact"]["copies_per_round"]
        assert copies["predt_received"] == "numpy.ndarray float32"  # XGBoost hands host margins
        assert copies["gradients_device_to_host"] == 0
        assert set(fit["ratio_to_native"]) == set(runs)


def _fake_xgboost_wheel(path: Path) -> bytes:
    """A minimal valid wheel of a package named xgboost (version 0.0.1), as bytes."""
    files = {
        "xgboost/__init__.py": b"__version__ = '0.0.1'\n",
        "xgboost-0.0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: xgboost\nVersion: 0.0.1\n",
        "xgboost-0.0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(data)}\n"
    record += "xgboost-0.0.1.dist-info/RECORD,,\n"
    files["xgboost-0.0.1.dist-info/RECORD"] = record.encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path.read_bytes()


def test_dry_run_joins_wheel_parts_from_several_folders(tmp_path):
    pytest.importorskip("pip")
    name = "xgboost-0.0.1-py3-none-any.whl"
    blob = _fake_xgboost_wheel(tmp_path / name)
    wheels = tmp_path / "carried"
    third = len(blob) // 3 + 1
    for i in range(3):  # three parts in three folders, as three carried calls leave them
        (wheels / f"p{i + 1}").mkdir(parents=True)
        (wheels / f"p{i + 1}" / f"{name}.part-{i:02d}").write_bytes(blob[i * third : (i + 1) * third])
    (wheels / "p1" / "xgboost.sha256").write_text(f"{hashlib.sha256(blob).hexdigest()}  {name}\n")
    out, res = run_check(tmp_path, "--dry-run", GPU_CHECK_WHEELS=str(wheels))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"joining 3 part(s) into {name}" in out.stdout
    assert (tmp_path / "gpu_check_wheels" / name).read_bytes() == blob
    assert "== xgboost 0.0.1" in out.stdout  # installed into GPU_CHECK_SITE and importable
    assert res["stages"]["env"]["versions"]["xgboost"] == "0.0.1"
    assert res["plan"]["fit"]["rows"] == 10_000_000 and res["plan"]["kernels"]["rows"] == [1_000_000, 10_000_000]
    assert "kernels" not in res["stages"]  # a dry run stops after the plan


def test_no_xgboost_skips_the_fit_with_a_reason(tmp_path):
    blocker = tmp_path / "blocker" / "xgboost"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('xgboost hidden for this test')\n")
    out, res = run_check(tmp_path, "--cpu-smoke", "--rows", "60", "--giant-rows", "30", PYTHONPATH=str(blocker.parent))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "no wheels under" in out.stdout
    assert "the XGBoost fit will be skipped" in out.stdout
    assert res["stages"]["fit"] == {"skipped": "xgboost is not installed (no xgboost-*.whl.part-* found)"}
    assert res["stages"]["kernels"]["ok"] is True  # the kernel checks need no XGBoost
    assert res["ok"] is True
