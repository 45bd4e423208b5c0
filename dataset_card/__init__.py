"""The dataset card: ``render.py`` computes its content from a dataset folder, ``template.md.j2`` lays it out."""
