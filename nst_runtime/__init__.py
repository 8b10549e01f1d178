"""nst's runtime: style transfer whose VGG forward and backward run in onnxruntime."""
