"""The desktop bundle's program: ``emocap`` (the CLI, ``emocap gui`` the app), and the few
``python ...`` command lines EmoCap runs as subprocesses of ``sys.executable``.

In the bundle ``sys.executable`` is this program, not a Python interpreter, yet EmoCap and the tools
it drives start children the way they would with Python: the app runs ``-m core.cli analyze ...``
(app/workers.py), the FBX exporter ``-P core/export/blender_fbx_worker.py ...`` (core/export/fbx.py),
the model store ``-m pip download ...`` (core/emotion/store.py), and pip itself runs helper scripts
by path when it prepares a source distribution. Those forms are understood here (leading
single-letter interpreter options such as ``-P``, ``-I``, ``-u`` are accepted and ignored: a frozen
program has no sys.path of the checkout to protect); every other command line is ``emocap``'s own.
"""

import multiprocessing
import os
import runpy
import sys

FLAGS = {"-B", "-E", "-I", "-P", "-s", "-S", "-u", "-q", "-O"}


def run_as_python(argv: list[str]) -> bool:
    """Run ``argv`` (without the program) as ``python`` would, if it is one of the forms above."""
    args = list(argv)
    flags = False
    while args and args[0] in FLAGS:
        args.pop(0)
        flags = True
    if len(args) >= 2 and args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return True
    if len(args) >= 2 and args[0] == "-c":
        sys.argv = ["-c", *args[2:]]
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
        return True
    if args and (flags or args[0].endswith(".py")) and os.path.exists(args[0]):
        sys.argv = list(args)
        runpy.run_path(args[0], run_name="__main__")
        return True
    return False


def main() -> int:
    multiprocessing.freeze_support()
    if run_as_python(sys.argv[1:]):
        return 0
    from core.cli import run as emocap

    emocap()  # exits with emocap's status
    return 0


if __name__ == "__main__":
    sys.exit(main())
