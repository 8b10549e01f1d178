"""Start-up overlap: find the graphs and build the onnxruntime sessions while torch imports.

Importing torch takes seconds and holds no lock that onnxruntime needs, and creating a session
spends its time in C++ with the GIL released; doing both at once shortens every run's start
(the GIMP plug-in starts a fresh worker per job). Failures are left for the main path to meet
and report: this thread only warms caches.
"""

from __future__ import annotations

import contextlib
import os
import threading

from nst_export import DEFAULT_LAYERS


def start(weights: str = "vgg19", pooling: str = "max", device: str = "auto", graphs_dir: str | None = None) -> None:
    """Warm the session cache for the engine's graphs in a daemon thread (``NST_PREWARM=0``: off)."""
    if os.environ.get("NST_PREWARM") == "0":
        return

    # Imports happen here, on the calling thread: two threads importing numpy at once can break
    # its initialisation ("partially initialized module"). The thread then only does C++ work.
    from .devices import precisions
    from .graphs import DETAIL_LAYERS, existing_graphs
    from .sessions import create_session

    exact, fast = precisions(device)  # as the engine will open them (both precisions of "openvino")

    def warm() -> None:
        with contextlib.suppress(Exception):  # the main path meets and reports every problem itself
            graphs = existing_graphs(weights, pooling, DEFAULT_LAYERS, graphs_dir)  # exporting is the main path's job
            if graphs is None:
                return
            _, used = create_session(graphs.feature_path, exact)
            create_session(graphs.fused_path, used)
            if fast is not None:
                create_session(graphs.feature_path, fast)
                create_session(graphs.fused_path, fast)
            if graphs_dir is None:  # the detail pass opens every scale after the first
                detail = existing_graphs(weights, pooling, DETAIL_LAYERS)
                if detail is not None:
                    create_session(detail.feature_path, fast or used)
                    create_session(detail.fused_path, fast or used)

    threading.Thread(target=warm, name="nst-prewarm", daemon=True).start()
