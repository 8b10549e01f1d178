"""Pixels in and out: image and video files, masks, colour handling, motion between frames, and
images as torch tensors. Nothing here knows VGG or objectives."""
