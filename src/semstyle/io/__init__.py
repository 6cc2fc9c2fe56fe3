"""Reading and writing images and label maps."""
