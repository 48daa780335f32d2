"""Scoring predictions the way each benchmark's own evaluation does: VQA answer normalisation and accuracy,
yes/no parsing and confusion metrics (POPE, MME), caption scores (CIDEr, BLEU, METEOR, SPICE)."""
