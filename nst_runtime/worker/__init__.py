"""The workers front ends such as the GIMP plug-in run as a child process, speaking JSON lines
(docs/worker-protocol.md): ``python -m nst_runtime.worker`` (a photo, or time estimates) and
``python -m nst_runtime.frame_worker`` (an animation). Nothing is imported here, so a worker
starts without torch until a run needs it."""
