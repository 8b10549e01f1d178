"""VGG in onnxruntime: the exported graphs, their sessions, and features as a differentiable torch op.

The lowest compute layer: it knows graphs, devices and tensors, nothing of objectives or runs.
"""
