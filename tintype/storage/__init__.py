"""tintype: storage."""
