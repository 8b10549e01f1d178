"""The plug-in's modules (GIMP puts the plug-in's folder on sys.path, so this package imports as is).

- ``launch``: where the user's Python is and how to start the worker there on each platform
  (Linux, Flatpak, Windows, macOS). No GIMP imports: unit-tested outside GIMP.
- ``worker_client``: one worker process, its JSON lines and its end. No GIMP imports either.
- ``errors``: the plug-in's two exceptions.
- ``layers``: pixels in and out of GIMP layers.
- ``arguments``: the procedure's PDB arguments and the worker request built from them.
- ``batch``: the non-interactive run (scripts, batch mode): no dialog, the final result only.
- ``dialog``: the live dialog (preview, Run / Apply now / Stop / Close, the time estimate).
- ``pdb``: PDB return values (every failure a status with a message).
- ``stylize``: the stylize procedure, tying them together.
- ``frames``: Filters > Animation > Neural Style Transfer (frames)… on the frame worker.

Only the entry file (``nst-style-transfer.py``) and the modules that say so import ``gi``.
"""
