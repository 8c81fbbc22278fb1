"""tintype: media."""
