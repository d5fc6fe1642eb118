"""Bridges to other systems: ``ray`` (Ray Data scoring and feature extraction). May import every part
of arniqa but cli; the systems themselves are optional extras."""
