"""The dataset card, pure: ``render`` (inputs, YAML header, rendering), ``context.build_context``, ``template.md.j2``."""
