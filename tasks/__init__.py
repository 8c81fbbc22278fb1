"""tintype: tasks."""
