"""evaluation: the paper's benchmarks on local copies of their data, read in the data's own formats.

One command per benchmark, ``python -m evaluation.<name> --model PATH --out DIR ...``: ``vqav2``, ``okvqa``,
``gqa``, ``vizwiz``, ``pope``, ``mme``, ``coco_captions`` and ``geneval``. ``harness`` holds what they share
(options, settings, the resumable predictions store, batching, tables), ``datasets`` reads each benchmark's
files into items, ``metrics`` scores predictions the way each benchmark's own tools do.
"""
