"""Running the ``artgan`` command in a fresh interpreter, to see what it imports."""

import ast
import subprocess
import sys


def imports_of(args: list[str], env: dict | None = None) -> tuple[int, set[str]]:
    """Run ``artgan ARGS`` in a fresh interpreter; its exit code and which of torch,
    torchvision and kornia it imported."""
    code = ("import sys\nfrom artgan.cli import main\nsys.argv = ['artgan', *sys.argv[1:]]\n"
            "status = 0\ntry:\n    main()\nexcept SystemExit as exc:\n    status = exc.code or 0\n"
            "found = sorted({'torch', 'torchvision', 'kornia'} & set(sys.modules))\n"
            "print('MODULES', repr((status, found)))")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env)
    line = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")][-1]
    status, modules = ast.literal_eval(line.removeprefix("MODULES "))
    return status, set(modules)
