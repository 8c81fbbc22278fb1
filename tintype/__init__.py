"""tintype: tintype."""
