"""One module per task: its options (a dataclass whose fields are the task's keyword arguments, saved per model in
``model_index.json``), the checks of its inputs, its loop and its output.

- ``generate``: text -> image, ``inpaint``: image + mask + text -> image (flow matching, ``ddit.image_sampling``'s
  loop; in-painting keeps the unmasked latents on the given image's path);
- ``caption``: image -> text, ``answer``: image + question -> text, ``infill``: image + template -> text (masked
  diffusion, ``ddit.text_sampling``'s loop, prepared by ``text``);
- ``score``: the two likelihood bounds, texts for an image and images for a prompt;

``base`` holds what every task shares: the override-over-defaults merge and :class:`Model`, everything a loop may
use of the pipeline, handed to it explicitly. The pipeline exposes each task as ``iter_<task>`` and a one-call
method; ``docs/design.md`` §6 says how to add one. Importing a task module does not import torch (the loops import
it when they run), so reading options and defaults stays light (``ddit --help``).
"""
