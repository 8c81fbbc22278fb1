"""Provenance of every result: a C2PA manifest saying what tintype did to it.

`definition` builds the manifest's content from the job (pure data, web-safe), `signing`
embeds it signed with the operator's key or, without one, makes an unsigned sidecar (never
nothing), `record` stores it as the job's `manifest` output, and `mark` draws the optional
visible mark. Nothing here imports torch: the GPU side passes in the models it used.
"""
