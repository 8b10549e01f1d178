"""``python -m nst_runtime.frame_worker``: the animation worker's entry point, at the path installed
GIMP plug-ins start (the worker itself is ``nst_runtime.worker.frames``)."""

if __name__ == "__main__":
    from .worker.frames import main
    from .worker.protocol import exit_with

    exit_with(main)
