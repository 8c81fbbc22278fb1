"""tintype: web."""
