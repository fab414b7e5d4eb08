"""deepvideo: deep learning on video."""
__version__ = "0.1.0"
