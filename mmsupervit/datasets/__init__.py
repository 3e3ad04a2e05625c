"""Data for the demo and the tests: :mod:`.demo_data` writes a small seeded
synthetic dataset in the ADE20K and COCO layouts (imported on use, it needs
OpenCV)."""
