"""tintype: the CPU pool's tasks (probe, track, finalize, reconcile); start it with
`celery -A tintype.tasks.worker worker -Q cpu`."""
