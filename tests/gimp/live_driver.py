"""Drives the live dialog in real GIMP 3 under Xvfb (runs where GIMP is, stdlib only).

    python3 live_driver.py WORK_DIR

WORK_DIR/spec.json holds the batch driver's spec plus "live": a list of steps, done in order:
  {"wait": EVENT, "n": N, "timeout": S}  until the plug-in's trace (NST_PLUGIN_TRACE) has N
                                          EVENT lines ("preview" lines count by their "n");
                                          "text": T counts only the lines whose message has T
  {"key": "alt+u", "mark": NAME}         press keys in the dialog; the press time goes to marks
  {"shot": NAME}                         dump the dialog window to WORK_DIR/NAME.xwd
  {"gone": "worker", "mark": NAME}       wait until the last run's worker process has ended
  {"undo": true}                         after the procedure returned: Ctrl+Z once in the image window
Every wait is on a condition, with a generous timeout: the machine may be slow and shared.
WORK_DIR/marks.json gets the times (time.time()) of the marks; the batch driver writes result.json.
"""

import json
import os
import subprocess
import sys
import time

WORK = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(WORK, "spec.json"), encoding="utf-8") as spec_file:
    SPEC = json.load(spec_file)
TRACE = os.path.join(WORK, "trace.jsonl")
DEFAULT_TIMEOUT = 600
marks = {}


def trace():
    try:
        with open(TRACE, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if gimp is not None and gimp.poll() is not None and not os.path.exists(os.path.join(WORK, "ready-for-undo")):
            raise SystemExit(f"live_driver: GIMP ended while waiting for {what}")
        time.sleep(0.05)
    raise SystemExit(f"live_driver: no {what} within {timeout} s")


def count(event, text=None):
    lines = [e for e in trace() if e["event"] == event and (text is None or text in e.get("message", ""))]
    return max((e.get("n", 0) for e in lines), default=0) if event == "preview" else len(lines)


def xdo(*args):
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, check=False).stdout.strip()


def visible(title_pattern):
    return xdo("search", "--onlyvisible", "--name", title_pattern)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# Xvfb picks a free display and writes its number when it is ready (other GIMP tests may run beside)
ready, told = os.pipe()
xvfb = subprocess.Popen(
    ["Xvfb", "-displayfd", str(told), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
    pass_fds=(told,),
    stderr=subprocess.DEVNULL,
)
os.close(told)
gimp = None
try:
    with os.fdopen(ready) as display:
        number = display.readline().strip()  # empty when Xvfb ended without a display
    if not number:
        raise SystemExit("live_driver: Xvfb did not start")
    os.environ.update({"DISPLAY": f":{number}", "GSETTINGS_BACKEND": "memory", "NST_PLUGIN_TRACE": TRACE})
    # this GIMP's binaries (gimp-3.0 or gimp-3.2 ...), as tools/gimp3-run.sh names them
    gui, console = os.environ.get("NST_GIMP_GUI", "gimp-3.0"), os.environ.get("NST_GIMP_CONSOLE", "gimp-console-3.0")
    binary = [gui, "-n", "-s"] if SPEC.get("display") else [console, "-i"]
    command = [*binary, "-d", "-f", "--batch-interpreter=python-fu-eval", "-b", "-", "--quit"]
    with open(os.path.join(HERE, "batch_driver.py"), "rb") as batch:
        gimp = subprocess.Popen(command, stdin=batch)
    wait(lambda: count("shown"), 300, "dialog")
    wid = wait(lambda: xdo("search", "--name", "^Neural Style Transfer$").split("\n")[0], 60, "dialog window")
    for step in SPEC["live"]:
        if "wait" in step:
            n = step.get("n", 1)
            event = step["wait"]
            text = step.get("text")
            wait(lambda e=event, n=n, t=text: count(e, t) >= n, step.get("timeout", DEFAULT_TIMEOUT), f"{event} #{n}")
        elif "key" in step:
            xdo("windowactivate", "--sync", wid)
            xdo("windowfocus", "--sync", wid)
            marks[step.get("mark", step["key"])] = time.time()
            xdo("key", step["key"])
        elif "shot" in step:
            with open(os.path.join(WORK, step["shot"] + ".xwd"), "wb") as out:
                subprocess.run(["xwd", "-silent", "-id", wid], stdout=out, check=True)
        elif "gone" in step:
            pid = [e for e in trace() if e["event"] == "run"][-1]["pid"]
            wait(lambda pid=pid: not alive(pid), 30, "the worker's end")
            marks[step["mark"]] = time.time()
        elif step.get("undo"):
            wait(lambda: os.path.exists(os.path.join(WORK, "ready-for-undo")), 300, "the batch driver")
            # the dialog must be gone and GIMP must have taken the image window's focus-in (which
            # makes its display the active one) before the key comes, or Ctrl+Z acts on no image
            wait(lambda: not visible("^Neural Style Transfer$"), 60, "the dialog's end")
            window = wait(lambda: visible(" – GIMP$").split("\n")[0], 60, "image window")
            xdo("windowfocus", "--sync", window)
            time.sleep(1.0)
            xdo("key", "ctrl+z")
            marks["windows_at_undo"] = [  # for the test's message if the undo does not take
                xdo("getwindowname", w) for w in visible(".").split("\n") if w
            ]
            marks["focus_at_undo"] = xdo("getwindowfocus", "-f")
            open(os.path.join(WORK, "undone"), "w").close()
    with open(os.path.join(WORK, "marks.json"), "w", encoding="utf-8") as f:
        json.dump(marks, f)
    gimp.wait(DEFAULT_TIMEOUT)
finally:
    if gimp is not None and gimp.poll() is None:
        gimp.kill()
    xvfb.terminate()
