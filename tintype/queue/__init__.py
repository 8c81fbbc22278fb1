"""What both worker pools share: the Celery app factory, sending by name, the task base
(failure policy, heartbeats, per-app handles) and the broker plumbing.

It depends only on tintype.jobs, tintype.storage, tintype.media and tintype.settings, so
the GPU pool never imports the CPU tasks and the CPU pool and the web never import torch.
"""
