"""Why an image is bad: the explanation head's training set, fit and accuracy (``arniqa explain``).
May import inference, evaluate, models, data, degradations, utils and constants; cli imports it."""
