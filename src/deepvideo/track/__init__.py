"""Object tracking: multi-object tracking (SORT, DeepSORT, ByteTrack-style association) with
MOTChallenge I/O and metrics, and single-object Siamese tracking (SiamFC, GOTURN) with
one-pass evaluation.  Boxes are ``(x, y, w, h)`` pixels, top-left corner, unless a function
says ``x1, y1, x2, y2``."""
