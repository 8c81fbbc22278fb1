"""`tintype restore DIR -o OUTDIR`: a whole collection with one set of workers (see runner)."""
