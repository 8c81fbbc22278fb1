"""Training code: never imported by the workers, which only load the weight files it exports."""
