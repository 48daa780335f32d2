"""Training, data and evaluation for ddit."""
