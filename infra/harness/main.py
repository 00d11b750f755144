"""Child-process entry of the render harness: read a request, run the program, write the document.

``infra.render`` starts the project's interpreter with a tiny bootstrap that loads this package by
path (so nothing of Gantry lands on the program's ``sys.path``) and calls ``main(request, result)``.
The program's own stdout and stderr go to the parent, which keeps them out of JSON output.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any


def _missing(name: str) -> dict[str, Any]:
    return {"harness": 1, "pulumiVersion": None, "resources": [], "outputs": {}, "diagnostics": [],
            "error": {"type": "ModuleNotFoundError", "message": f"No module named {name!r}", "location": None,
                      "traceback": "", "missingModule": name}}


def main(request_path: str, result_path: str) -> int:
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    entry = Path(request["entry"])
    program_dir, root = request["programDir"], request["root"]
    # ``python -c`` put the working directory first; the SDK must load before the program's folder
    # can shadow a standard module (a program's own platform.py must not replace the stdlib's).
    while sys.path and sys.path[0] in ("", os.getcwd()):
        sys.path.pop(0)
    try:
        import pulumi
        import pulumi.runtime.mocks  # noqa: F401
    except ModuleNotFoundError as exc:
        doc = _missing(exc.name or "pulumi")
    else:
        from .capture import run

        # As the language host does: the program's folder first, the working directory at the program.
        sys.path[:0] = list(dict.fromkeys([program_dir, root]))
        sys.argv = [str(entry)]
        os.chdir(program_dir)

        placeholders = tuple(request.get("secretPlaceholders") or ())

        def is_secret(value: Any) -> bool:
            return isinstance(value, str) and value.startswith(placeholders) if placeholders else False

        def program() -> None:
            runpy.run_path(str(entry), run_name="__main__")

        try:
            doc = run(program, project=request["project"], stack=request["stack"], config=request["config"],
                      secret_keys=tuple(request.get("secretKeys") or ()), root=root, is_secret=is_secret,
                      resume_gc=False)
        except BaseException:  # a harness fault, not the program's: report it whole
            sys.stderr.write(traceback.format_exc())
            return 3
    doc["python"] = sys.executable
    tmp = Path(result_path + ".tmp")
    tmp.write_text(json.dumps(doc, sort_keys=False), encoding="utf-8")
    tmp.replace(result_path)
    # Tearing down thousands of SDK classes takes longer than the render of a small stack; the result
    # is on disk, so leave at once (after flushing what the program printed).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
