"""An example mmbench model plugin: copy this package to start your own.

Nothing here is imported by mmbench until a run asks for `example_poe`: the entry point in
`setup.cfg` points at `mmbench_example_plugin.model:example_poe`, and mmbench loads it lazily.
"""
