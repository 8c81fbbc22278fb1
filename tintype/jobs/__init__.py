"""Everything about a job: its options, intake, state transitions, queries and quotas.

Web, the CPU tasks and the GPU tasks all call this package; it calls only `storage`,
`media` and `settings`, never a layer above it.
"""
