"""Where regions come from: label-map handling, automatic co-segmentation, SegFormer."""
