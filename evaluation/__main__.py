"""``python -m evaluation``: list the benchmark commands."""

COMMANDS = {
    "vqav2": "VQAv2 accuracy (official normalisation), or test-dev predictions for the server",
    "okvqa": "OK-VQA accuracy (VQAv2's format)",
    "gqa": "GQA exact-match accuracy",
    "vizwiz": "VizWiz-VQA accuracy, or test predictions for the challenge",
    "pope": "POPE accuracy, precision, recall, F1, yes-ratio",
    "mme": "MME perception and cognition scores, and MME's eval-tool files",
    "coco_captions": "COCO captions (Karpathy split): CIDEr, BLEU-4, METEOR/SPICE with Java",
    "geneval": "GenEval prompts' images in GenEval's folder layout (scored by GenEval's own tools)",
}

if __name__ == "__main__":
    print("python -m evaluation.<benchmark> --model PATH --out DIR ... (--help for each):")
    for name, what in COMMANDS.items():
        print(f"  {name:<14} {what}")
