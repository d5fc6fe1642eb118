"""Why an image is bad: the explanation head's training set (samples), its features and accuracy (fit), and
whether quality maps point at the damage (localise: a measurement, ``benchmarks/explain_cpu.py``).
May import inference, evaluate, models, data, degradations, utils and constants; cli imports it."""
