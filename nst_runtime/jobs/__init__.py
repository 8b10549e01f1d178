"""Jobs of many runs: a batch of photos, a video's work folder, and both as tasks on a Ray cluster.

They sit on the engine and report through a ``Reporter`` (``jobs.reporting``): no argparse and no
printing here, so the CLI and any other front end present them their own way.
"""
