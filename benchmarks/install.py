"""A regular (non-editable) install of this checkout, for `benchmarks/run.py --only startup`.

An editable install starts slower than the one a user gets from `pip install fanout-cli`
or pipx: its .pth file runs a meta-path finder on every start, and the package's bytecode
is compiled on first use in the checkout. So the startup workload measures this:

1. a wheel of the checkout, built here with zipfile (a pure-Python wheel is a zip of the
   package and a dist-info folder; no build backend is needed, and the venvs this runs in
   may have a setuptools too old to build one without network);
2. a scratch venv without pip, into which the running pip installs that wheel with
   `--no-deps --no-index` (pip compiles the bytecode and writes the console script, as for
   a user);
3. one .pth file in the scratch venv naming the running venv's site-packages, for the
   dependencies (typer, rich, anyio...). A path line in a .pth file only joins sys.path:
   the .pth files in that folder, among them the editable install's, are not processed.

Installs nothing from any index and touches nothing outside `scratch`.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "fanout_cli"


def regular_install(scratch: Path) -> Path:
    """The `fanout` script of a fresh non-editable install of this checkout in
    `scratch`/venv; checked to import the installed package, not the checkout."""
    wheel = build_wheel(scratch / "wheel")
    venv = scratch / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", "--no-build-isolation", str(wheel)],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(site_packages) / "_running_venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = subprocess.run([str(python), "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
                           capture_output=True, text=True, check=True, cwd=venv).stdout.strip()  # fmt: skip
    if not where.startswith(site_packages):
        raise RuntimeError(f"the scratch venv imports {where}, not its own install")
    return venv / "bin" / "fanout"


def build_wheel(out: Path) -> Path:
    """A py3-none-any wheel of the package's .py files, with its console scripts."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name, version = project["name"].replace("-", "_"), project["version"]
    dist_info = f"{name}-{version}.dist-info"
    files = {path.relative_to(ROOT).as_posix(): path.read_bytes()
             for path in sorted((ROOT / PACKAGE).rglob("*.py"))}  # fmt: skip
    files[f"{dist_info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                      f"Version: {version}\n").encode()  # fmt: skip
    files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: benchmarks/install.py\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n")  # fmt: skip
    scripts = "".join(f"{script} = {target}\n" for script, target in project["scripts"].items())
    files[f"{dist_info}/entry_points.txt"] = f"[console_scripts]\n{scripts}".encode()
    record = "".join(f"{path},sha256={_digest(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = f"{record}{dist_info}/RECORD,,\n".encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
