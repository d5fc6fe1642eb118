"""Pictures for people: the HTML report of scored images (``arniqa report``, html.py) and the degradation
model at a glance (``arniqa gallery``, gallery.py). May import constants, utils, degradations, data and
models; cli imports it."""
