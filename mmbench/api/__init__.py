"""The contract between mmbench and a model or dataset package: the model base class
(`model.py`), the registries with their decorators and factory rules (`registry.py`), `KEY=VALUE`
options (`options.py`) and the plugin check (`plugin_check.py`). Plugins import these names from
`mmbench` itself."""
